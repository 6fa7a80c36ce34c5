// Shared vitest settings: tests import workspace packages from their TypeScript sources
// (the "source" export condition), so a package's tests never wait for its dependencies' builds.
import { defineConfig } from "vitest/config";

const conditions = ["source", "module", "node", "development|production"];

export function packageTestConfig(extra: { testTimeout?: number; include?: string[]; fileParallelism?: boolean } = {}) {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ["source"] } },
    test: {
      include: extra.include ?? ["test/**/*.test.ts"],
      setupFiles: ["reflect-metadata"],
      passWithNoTests: true,
      testTimeout: extra.testTimeout ?? 20_000,
      pool: "forks",
      fileParallelism: extra.fileParallelism ?? true,
    },
  });
}
