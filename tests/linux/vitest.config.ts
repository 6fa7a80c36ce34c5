import { packageTestConfig } from "../../vitest.shared.js";

// Each test boots Linux, which runs emulated on this host (about a minute to userspace).
const config = packageTestConfig({ testTimeout: 420_000 });
config.test!.globalSetup = ["./test/global-setup.ts"];
export default config;
