#!/usr/bin/env node
import { compareMain } from "../dist/cli.js";

process.exitCode = compareMain(process.argv.slice(2));
