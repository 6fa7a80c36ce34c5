import { defineConfig } from "vitest/config";

// Plain Node code: no workspace sources to resolve, no decorator metadata.
export default defineConfig({ test: { include: ["test/**/*.test.ts"], pool: "forks" } });
