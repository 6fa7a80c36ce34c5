// Each test file gets its own control socket directory (XDG_RUNTIME_DIR), inherited by the vmm processes it starts:
// VMs of test files running in parallel never see each other's names, and the user's own VMs are never touched.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

process.env.XDG_RUNTIME_DIR = mkdtempSync(path.join(tmpdir(), "vmm-xdg-"));
