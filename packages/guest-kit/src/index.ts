export { buildGuest, listGuests, GUEST_CFLAGS, guestSourceDir, guestCacheDir, type GuestFormat } from "./build.js";
