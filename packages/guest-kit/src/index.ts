export { buildGuest, listGuests, GUEST_CFLAGS, guestSourceDir, guestCacheDir, type GuestFormat, type BuildOptions } from "./build.js";
