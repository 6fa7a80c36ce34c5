import { createRequire } from "node:module";
import type { DependencyContainer } from "tsyringe";

/**
 * tsyringe's root container, loaded with require: tsyringe is CommonJS, and an ESM import of it makes Node scan its
 * sources first (cjs-module-lexer), which cost a `vmm run` ~25 ms and ~8 MiB at start-up (issue #17).
 */
export const rootContainer: DependencyContainer = createRequire(import.meta.url)("tsyringe").container;
