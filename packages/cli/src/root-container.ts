import type { DependencyContainer } from "tsyringe";
import { requireTsyringe } from "./startup/tsyringe.js";

/**
 * tsyringe's root container, loaded with require: tsyringe is CommonJS, and an ESM import of it makes Node scan its
 * sources first (cjs-module-lexer), which cost a `vmm run` ~25 ms and ~8 MiB at start-up (issue #17). The build's
 * one-file tsyringe spares the loader its 34 files (startup/tsyringe.ts).
 */
export const rootContainer: DependencyContainer = requireTsyringe().container;
