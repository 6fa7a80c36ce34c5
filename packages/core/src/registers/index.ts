export * from "./bits.js";
export * from "./table.js";
