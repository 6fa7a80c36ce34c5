#!/usr/bin/env node
import { benchRunMain } from "../dist/cli.js";

process.exitCode = benchRunMain(process.argv.slice(2));
