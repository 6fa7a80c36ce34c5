// Builds the native addon (build/Release/kvm_native.node); the steps, the lock and the freshness check are
// @vmm/addon-build's, shared with @vmm/host-io. `--force` rebuilds even when the addon looks fresh.
import { buildAddon } from "@vmm/addon-build";

buildAddon(new URL("..", import.meta.url));
