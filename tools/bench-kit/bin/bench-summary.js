#!/usr/bin/env node
import { summaryMain } from "../dist/cli.js";

process.exitCode = summaryMain(process.argv.slice(2));
