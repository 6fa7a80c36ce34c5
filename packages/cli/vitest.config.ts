import { mergeConfig } from "vitest/config";
import { packageTestConfig } from "../../vitest.shared.js";

export default mergeConfig(packageTestConfig({ testTimeout: 60_000 }), {
  test: { globalSetup: ["test/global-setup.ts"], setupFiles: ["test/control-dir.ts"] },
});
