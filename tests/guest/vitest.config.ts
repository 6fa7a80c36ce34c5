import { packageTestConfig } from "../../vitest.shared.js";

// Guest programs run emulated (about 0.3 us per instruction on this host): allow them time.
export default packageTestConfig({ testTimeout: 120_000 });
