#!/usr/bin/env node
// The vmm command. reflect-metadata must be loaded before anything that uses tsyringe.
import "reflect-metadata";

const { main } = await import("../dist/main.js");
const status = await main(process.argv.slice(2));
// The VM and its devices are closed by now; do not wait for stray handles (sockets, timers) of plugins.
process.exit(status);
