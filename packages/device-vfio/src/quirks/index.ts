// Plugin quirks on passthrough functions: matching registered quirks against a device and laying their windows.
export { applyQuirks, registeredQuirks, type QuirkHost } from "./apply.js";
export { quirkMatches, matchesIdentity } from "./match.js";
