import { defineConfig } from "vitest/config";

// Reads built declaration files only: no source conditions, no decorator metadata.
export default defineConfig({ test: { include: ["test/**/*.test.ts"], testTimeout: 60_000, pool: "forks" } });
