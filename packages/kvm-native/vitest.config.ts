import { packageTestConfig } from "../../vitest.shared.js";

// One test file at a time: the arm64 cross-compile (ten compiler runs) beside the event-loop liveness tests starved
// the watcher thread of a busy CI host until a 50 ms timer had not fired after 3 s.
export default packageTestConfig({ fileParallelism: false });
