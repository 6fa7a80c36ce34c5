import { packageTestConfig } from "../../vitest.shared.js";

// The README's commands build, install and boot guests in a fresh copy of the repository: allow them time.
const config = packageTestConfig({ testTimeout: 240_000 });
config.test!.globalSetup = ["./test/global-setup.ts"];
config.test!.hookTimeout = 240_000;
export default config;
