import { packageTestConfig } from "../../vitest.shared.js";

// Each build runs gcc, as and ld: seconds on a quiet host, tens of seconds while other suites compete for the cores.
export default packageTestConfig({ testTimeout: 120_000 });
