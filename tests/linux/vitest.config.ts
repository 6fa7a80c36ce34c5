import { packageTestConfig } from "../../vitest.shared.js";

// Each test boots Linux, which runs emulated on this host (about a minute to userspace).
const config = packageTestConfig({ testTimeout: 420_000 });
config.test!.globalSetup = ["./test/global-setup.ts"];
// One boot at a time: two emulated guests on two cores slow each PM-timer read past Linux's calibration limit
// (in one CI run a boot beside another needed four tries).
config.test!.fileParallelism = false;
export default config;
