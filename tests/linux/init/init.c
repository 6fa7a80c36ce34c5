/*
 * /init of the Linux test guest: a static program without libc (every fork+exec and every copy is slow under this
 * host's emulated KVM, so one small process does all the checks). The checks to run come as arguments after "--"
 * on the kernel command line. Results are lines starting with "@@ " on the console (ttyS0), read by the host test.
 * Ends by writing its status to the debug-exit port 0x501 (the VMM exits with it).
 */
typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;

enum {
  SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_lseek = 8, SYS_ioctl = 16, SYS_pread64 = 17,
  SYS_pwrite64 = 18, SYS_nanosleep = 35, SYS_fsync = 74, SYS_mkdir = 83, SYS_readlink = 89, SYS_sync = 162,
  SYS_mount = 165, SYS_getdents64 = 217, SYS_socket = 41, SYS_connect = 42, SYS_sendto = 44, SYS_recvfrom = 45, SYS_setsockopt = 54,
};
enum { O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_DIRECTORY = 0200000 };
#define BLKFLSBUF 0x1261
#define BLKGETSIZE64 0x80081272

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long r;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return r;
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static size_t len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int eq(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }
static int starts(const char *s, const char *p) { while (*p) if (*s++ != *p++) return 0; return 1; }
static void copy(char *d, const char *s) { while ((*d++ = *s++)) {} }

/* Output goes through one buffer per line so a line reaches the console in one write. */
static char line[1024];
static size_t used;
static void put(const char *s) { while (*s && used < sizeof line - 2) line[used++] = *s++; }
static void putu(u64 v) { char b[24]; int i = 23; b[i] = 0; do b[--i] = (char)('0' + v % 10); while (v /= 10); put(b + i); }
static void puti(long v) { if (v < 0) { put("-"); putu((u64)-v); } else putu((u64)v); }
static void puthex(const u8 *p, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) { char c[3] = { d[p[i] >> 4], d[p[i] & 15], 0 }; put(c); }
}
static void end(void) { line[used++] = '\n'; sys3(SYS_write, 1, line, used); used = 0; }

static ssize_t read_file(const char *path, char *buf, size_t size) {
  long fd = sys3(SYS_open, path, O_RDONLY, 0);
  if (fd < 0) return fd;
  ssize_t n = 0, r;
  while ((size_t)n < size - 1 && (r = sys3(SYS_read, fd, buf + n, size - 1 - n)) > 0) n += r;
  sys3(SYS_close, fd, 0, 0);
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  return n;
}

static long write_file(const char *path, const char *text) {
  long fd = sys3(SYS_open, path, O_WRONLY, 0);
  if (fd < 0) return fd;
  long r = sys3(SYS_write, fd, text, len(text));
  sys3(SYS_close, fd, 0, 0);
  return r < 0 ? r : 0;
}

static void sleep_ms(long ms) {
  long ts[2] = { ms / 1000, (ms % 1000) * 1000000 };
  sys3(SYS_nanosleep, ts, 0, 0);
}

/* Prints a file's lines, each prefixed: "@@ <tag> <line>". */
static void dump(const char *tag, const char *path) {
  static char buf[16384];
  ssize_t n = read_file(path, buf, sizeof buf);
  if (n < 0) { put("@@ "); put(tag); put(" error "); puti(n); end(); return; }
  char *s = buf;
  for (ssize_t i = 0; i <= n; i++) {
    if (buf[i] == '\n' || buf[i] == 0) {
      buf[i] = 0;
      put("@@ "); put(tag); put(" "); put(s); end();
      s = buf + i + 1;
    }
  }
}

struct dirent64 { u64 ino; long off; unsigned short reclen; u8 type; char name[]; };

/* Calls `each` for every entry of a directory except . and .. */
static void list_dir(const char *path, void (*each)(const char *dir, const char *name)) {
  static char buf[8192];
  long fd = sys3(SYS_open, path, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) { put("@@ error open "); put(path); put(" "); puti(fd); end(); return; }
  long n;
  while ((n = sys3(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(buf + off);
      if (!eq(d->name, ".") && !eq(d->name, "..")) each(path, d->name);
      off += d->reclen;
    }
  }
  sys3(SYS_close, fd, 0, 0);
}

static void path2(char *out, const char *a, const char *b) { copy(out, a); copy(out + len(out), "/"); copy(out + len(out), b); }

/* One line per PCI function: what Linux's PCI core made of it (IDs, class, IRQ, driver, BAR resources). */
static void pci_function(const char *dir, const char *name) {
  char p[256], v[512];
  put("@@ pci "); put(name);
  static const char *const attrs[] = { "vendor", "device", "class", "irq" };
  for (int i = 0; i < 4; i++) {
    path2(p, dir, name); copy(p + len(p), "/"); copy(p + len(p), attrs[i]);
    put(" "); put(attrs[i]); put("=");
    if (read_file(p, v, sizeof v) >= 0) put(v); else put("?");
  }
  path2(p, dir, name); copy(p + len(p), "/driver");
  long n = sys3(SYS_readlink, p, v, sizeof v - 1);
  put(" driver=");
  if (n > 0) { v[n] = 0; char *slash = v; for (char *c = v; *c; c++) if (*c == '/') slash = c + 1; put(slash); } else put("none");
  end();
  path2(p, dir, name); copy(p + len(p), "/resource");
  static char res[4096];
  if (read_file(p, res, sizeof res) < 0) return;
  int bar = 0;
  char *s = res;
  for (char *c = res;; c++) {
    if (*c == '\n' || *c == 0) {
      int last = *c == 0;
      *c = 0;
      /* Lines are "start end flags"; unused ones are all zero. Index 6 is the ROM. */
      if (!starts(s, "0x0000000000000000 0x0000000000000000")) { put("@@ bar "); put(name); put(" "); putu((u64)bar); put(" "); put(s); end(); }
      bar++;
      s = c + 1;
      if (last) break;
    }
  }
}

static int failures;
static void fail(const char *what, long err) { failures++; put("@@ FAIL "); put(what); put(" "); puti(err); end(); }

/* A recognisable pattern for sector `lba`: the host reads the image and checks it. */
static void pattern(u8 *buf, size_t n, u64 lba) {
  for (size_t i = 0; i < n; i++) buf[i] = (u8)((lba * 131 + i * 7 + (i >> 9)) ^ 0x5a);
}

static u8 sector_buf[8192] __attribute__((aligned(4096)));

/* blk-write:DEV:LBA: writes 8 KiB of pattern at LBA, syncs, drops the cache and reads it back from the device. */
static void blk_write(const char *dev, u64 lba) {
  char p[64] = "/dev/"; copy(p + 5, dev);
  long fd = sys3(SYS_open, p, O_RDWR, 0);
  if (fd < 0) { fail("blk-write open", fd); return; }
  pattern(sector_buf, sizeof sector_buf, lba);
  long r = sys6(SYS_pwrite64, fd, (long)sector_buf, sizeof sector_buf, (long)(lba * 512), 0, 0);
  if (r != (long)sizeof sector_buf) { fail("blk-write pwrite", r); sys3(SYS_close, fd, 0, 0); return; }
  if ((r = sys3(SYS_fsync, fd, 0, 0)) < 0) fail("blk-write fsync", r);
  if ((r = sys3(SYS_ioctl, fd, BLKFLSBUF, 0)) < 0) fail("blk-write BLKFLSBUF", r);
  for (size_t i = 0; i < sizeof sector_buf; i++) sector_buf[i] = 0;
  r = sys6(SYS_pread64, fd, (long)sector_buf, sizeof sector_buf, (long)(lba * 512), 0, 0);
  sys3(SYS_close, fd, 0, 0);
  if (r != (long)sizeof sector_buf) { fail("blk-write pread", r); return; }
  static u8 want[sizeof sector_buf];
  pattern(want, sizeof want, lba);
  for (size_t i = 0; i < sizeof want; i++) if (want[i] != sector_buf[i]) { fail("blk-write readback differs at byte", (long)i); return; }
  put("@@ blk-write "); put(dev); put(" lba="); putu(lba); put(" bytes="); putu(sizeof sector_buf); put(" ok"); end();
}

/* blk-read:DEV: the device's size and its first 64 bytes, read after dropping the cache. */
static void blk_read(const char *dev) {
  char p[64] = "/dev/"; copy(p + 5, dev);
  long fd = sys3(SYS_open, p, O_RDONLY, 0);
  if (fd < 0) { fail("blk-read open", fd); return; }
  u64 size = 0;
  long r = sys3(SYS_ioctl, fd, BLKGETSIZE64, &size);
  if (r < 0) fail("blk-read BLKGETSIZE64", r);
  sys3(SYS_ioctl, fd, BLKFLSBUF, 0);
  r = sys6(SYS_pread64, fd, (long)sector_buf, 64, 0, 0, 0);
  sys3(SYS_close, fd, 0, 0);
  if (r != 64) { fail("blk-read pread", r); return; }
  put("@@ blk-read "); put(dev); put(" size="); putu(size); put(" head="); puthex(sector_buf, 64); end();
}

/* blk-ro:DEV: opening a read-only disk for writing must fail. */
static void blk_ro(const char *dev) {
  char p[64] = "/dev/"; copy(p + 5, dev);
  long fd = sys3(SYS_open, p, O_WRONLY, 0);
  put("@@ blk-ro "); put(dev); put(" open-for-write=");
  puti(fd < 0 ? fd : 0);
  if (fd >= 0) {
    sector_buf[0] = 1;
    long r = sys6(SYS_pwrite64, fd, (long)sector_buf, 512, 0, 0, 0);
    put(" write="); puti(r);
    r = sys3(SYS_fsync, fd, 0, 0);
    put(" fsync="); puti(r);
    sys3(SYS_close, fd, 0, 0);
  }
  end();
}

/* rng: 32 bytes from /dev/hwrng and the driver behind it. */
static void rng(void) {
  char cur[64];
  if (read_file("/sys/class/misc/hw_random/rng_current", cur, sizeof cur) < 0) copy(cur, "?");
  long fd = sys3(SYS_open, "/dev/hwrng", O_RDONLY, 0);
  if (fd < 0) { fail("rng open", fd); return; }
  u8 b[32];
  size_t got = 0;
  long r = 0;
  while (got < sizeof b && (r = sys3(SYS_read, fd, b + got, sizeof b - got)) > 0) got += (size_t)r;
  sys3(SYS_close, fd, 0, 0);
  if (got != sizeof b) { fail("rng read", r); return; }
  put("@@ rng current="); put(cur); put(" bytes="); puthex(b, sizeof b); end();
}

/* console: a line out on hvc0, then the line the host answers with. */
static void console(void) {
  long fd = sys3(SYS_open, "/dev/hvc0", O_RDWR, 0);
  if (fd < 0) { fail("console open", fd); return; }
  const char *hello = "hello from the guest on hvc0\n";
  long r = sys3(SYS_write, fd, hello, len(hello));
  if (r < 0) { fail("console write", r); sys3(SYS_close, fd, 0, 0); return; }
  char in[128];
  size_t n = 0;
  while (n < sizeof in - 1) {
    r = sys3(SYS_read, fd, in + n, 1);
    if (r <= 0) break;
    if (in[n] == '\n' || in[n] == '\r') { if (n == 0) continue; break; }
    n++;
  }
  sys3(SYS_close, fd, 0, 0);
  in[n] = 0;
  put("@@ console received="); put(in); end();
}

/* IPv4 "a.b.c.d" to network byte order; 0 when malformed. */
static u32 parse_ip(const char *s, const char **end) {
  u32 ip = 0;
  for (int part = 0; part < 4; part++) {
    u32 v = 0;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (u32)(*s++ - '0');
    if (v > 255 || (part < 3 && *s++ != '.')) return 0;
    ip |= v << (8 * part);
  }
  if (end) *end = s;
  return ip;
}

struct sockaddr_in { unsigned short family; unsigned short port; u32 addr; u8 zero[8]; };
struct ifreq { char name[16]; union { struct sockaddr_in addr; short flags; u8 raw[24]; } u; };
enum { AF_INET = 2, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, IPPROTO_ICMP = 1, SOL_SOCKET = 1, SO_RCVTIMEO = 20 };
enum { SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916, SIOCSIFNETMASK = 0x891c, SIOCGIFHWADDR = 0x8927 };

/* net-up:IFACE:A.B.C.D/PREFIX: address, netmask and IFF_UP through the classic ioctls. */
static void net_up(const char *arg) {
  struct ifreq ifr;
  for (size_t i = 0; i < sizeof ifr; i++) ((u8 *)&ifr)[i] = 0;
  size_t n = 0;
  while (*arg && *arg != ':' && n < sizeof ifr.name - 1) ifr.name[n++] = *arg++;
  const char *rest;
  u32 ip = *arg == ':' ? parse_ip(arg + 1, &rest) : 0;
  u32 prefix = 0;
  if (!ip || *rest != '/') { fail("net-up bad argument", 0); return; }
  for (rest++; *rest >= '0' && *rest <= '9'; rest++) prefix = prefix * 10 + (u32)(*rest - '0');
  u32 mask = prefix ? ~0u << (32 - prefix) : 0;
  long fd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { fail("net-up socket", fd); return; }
  long r;
  ifr.u.addr.family = AF_INET;
  ifr.u.addr.addr = ip;
  if ((r = sys3(SYS_ioctl, fd, SIOCSIFADDR, &ifr)) < 0) fail("net-up SIOCSIFADDR", r);
  ifr.u.addr.addr = (mask >> 24) | ((mask >> 8) & 0xff00) | ((mask << 8) & 0xff0000) | (mask << 24);
  if ((r = sys3(SYS_ioctl, fd, SIOCSIFNETMASK, &ifr)) < 0) fail("net-up SIOCSIFNETMASK", r);
  if ((r = sys3(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr)) < 0) fail("net-up SIOCGIFFLAGS", r);
  ifr.u.flags |= 1; /* IFF_UP */
  if ((r = sys3(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr)) < 0) fail("net-up SIOCSIFFLAGS", r);
  u8 mac[6] = { 0 };
  if (sys3(SYS_ioctl, fd, SIOCGIFHWADDR, &ifr) == 0) for (int i = 0; i < 6; i++) mac[i] = ifr.u.raw[2 + i];
  sys3(SYS_close, fd, 0, 0);
  put("@@ net-up "); put(ifr.name); put(" mac="); puthex(mac, 6); put(" ok"); end();
}

static unsigned short inet_checksum(const u8 *p, size_t n) {
  u32 sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (u32)(p[i] | p[i + 1] << 8);
  if (n & 1) sum += p[n - 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (unsigned short)~sum;
}

/* ping:A.B.C.D: ICMP echo over a raw socket until one reply comes back (up to 10 tries, 2 s each). */
static void ping(const char *arg) {
  u32 ip = parse_ip(arg, 0);
  if (!ip) { fail("ping bad address", 0); return; }
  long fd = sys3(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) { fail("ping socket", fd); return; }
  long tv[2] = { 2, 0 };
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof tv, 0);
  struct sockaddr_in to = { AF_INET, 0, ip, { 0 } };
  for (unsigned short seq = 1; seq <= 10; seq++) {
    u8 pkt[64];
    for (size_t i = 0; i < sizeof pkt; i++) pkt[i] = (u8)i;
    pkt[0] = 8; pkt[1] = 0; pkt[2] = pkt[3] = 0; /* echo request, checksum below */
    pkt[4] = 0x76; pkt[5] = 0x6d; pkt[6] = (u8)(seq >> 8); pkt[7] = (u8)seq;
    unsigned short ck = inet_checksum(pkt, sizeof pkt);
    pkt[2] = (u8)ck; pkt[3] = (u8)(ck >> 8);
    long r = sys6(SYS_sendto, fd, (long)pkt, sizeof pkt, 0, (long)&to, sizeof to);
    if (r < 0) { put("@@ ping send "); puti(r); end(); sleep_ms(1000); continue; }
    for (;;) {
      u8 in[256];
      r = sys6(SYS_recvfrom, fd, (long)in, sizeof in, 0, 0, 0);
      if (r < 0) break; /* timed out: next try */
      size_t ihl = (size_t)(in[0] & 15) * 4;
      if ((size_t)r < ihl + 8) continue;
      const u8 *icmp = in + ihl;
      u32 from = (u32)in[12] | (u32)in[13] << 8 | (u32)in[14] << 16 | (u32)in[15] << 24;
      if (icmp[0] == 0 && from == ip && icmp[4] == 0x76 && icmp[5] == 0x6d && icmp[7] == (u8)seq) {
        sys3(SYS_close, fd, 0, 0);
        put("@@ ping "); put(arg); put(" reply seq="); putu(seq); put(" ok"); end();
        return;
      }
    }
  }
  sys3(SYS_close, fd, 0, 0);
  fail("ping no reply", 0);
}

/* tcp:A.B.C.D:PORT: connects (up to 10 tries, 1 s apart), sends "hello from the guest\n" and prints the line
   the server sends back. */
static void tcp(const char *arg) {
  const char *rest;
  u32 ip = parse_ip(arg, &rest);
  unsigned port = 0;
  if (!ip || *rest != ':') { fail("tcp bad argument", 0); return; }
  for (rest++; *rest >= '0' && *rest <= '9'; rest++) port = port * 10 + (unsigned)(*rest - '0');
  struct sockaddr_in to = { AF_INET, (unsigned short)((port >> 8) | ((port & 0xff) << 8)), ip, { 0 } };
  long fd = -1, r = -1;
  for (int try = 0; try < 10; try++) {
    fd = sys3(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { fail("tcp socket", fd); return; }
    if ((r = sys3(SYS_connect, fd, &to, sizeof to)) == 0) break;
    sys3(SYS_close, fd, 0, 0);
    sleep_ms(1000);
  }
  if (r < 0) { fail("tcp connect", r); return; }
  long tv[2] = { 10, 0 };
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof tv, 0);
  static const char hello[] = "hello from the guest\n";
  if ((r = sys3(SYS_write, fd, hello, sizeof hello - 1)) != (long)(sizeof hello - 1)) { sys3(SYS_close, fd, 0, 0); fail("tcp write", r); return; }
  char in[200];
  size_t n = 0;
  while (n < sizeof in - 1 && (r = sys3(SYS_read, fd, in + n, sizeof in - 1 - n)) > 0) {
    n += (size_t)r;
    if (in[n - 1] == '\n') break;
  }
  sys3(SYS_close, fd, 0, 0);
  if (n == 0 || in[n - 1] != '\n') { fail("tcp no reply line", r); return; }
  in[n - 1] = 0;
  put("@@ tcp "); put(arg); put(" got '"); put(in); put("' ok"); end();
}

/* rescan:BDF: removes a function through sysfs and rescans the bus, as a user or hotplug would. */
static void rescan(const char *bdf) {
  char p[128] = "/sys/bus/pci/devices/";
  copy(p + len(p), bdf); copy(p + len(p), "/remove");
  long r = write_file(p, "1");
  if (r < 0) { fail("rescan remove", r); return; }
  r = write_file("/sys/bus/pci/rescan", "1");
  if (r < 0) { fail("rescan rescan", r); return; }
  put("@@ rescan "); put(bdf); put(" ok"); end();
}

static void run_check(const char *arg) {
  if (eq(arg, "pci")) list_dir("/sys/bus/pci/devices", pci_function);
  else if (eq(arg, "interrupts")) dump("interrupts", "/proc/interrupts");
  else if (eq(arg, "rng")) rng();
  else if (eq(arg, "console")) console();
  else if (starts(arg, "blk-write:")) {
    char dev[16]; const char *s = arg + 10; size_t i = 0;
    while (*s && *s != ':' && i < sizeof dev - 1) dev[i++] = *s++;
    dev[i] = 0;
    u64 lba = 0;
    if (*s == ':') for (s++; *s >= '0' && *s <= '9'; s++) lba = lba * 10 + (u64)(*s - '0');
    blk_write(dev, lba);
  } else if (starts(arg, "blk-read:")) blk_read(arg + 9);
  else if (starts(arg, "blk-ro:")) blk_ro(arg + 7);
  else if (starts(arg, "rescan:")) rescan(arg + 7);
  else if (starts(arg, "net-up:")) net_up(arg + 7);
  else if (starts(arg, "ping:")) ping(arg + 5);
  else if (starts(arg, "tcp:")) tcp(arg + 4);
  else if (starts(arg, "sleep:")) { long ms = 0; for (const char *s = arg + 6; *s >= '0' && *s <= '9'; s++) ms = ms * 10 + (*s - '0'); sleep_ms(ms); }
  else if (starts(arg, "cat:")) dump(arg + 4, arg + 4);
  else { put("@@ FAIL unknown check "); put(arg); end(); failures++; }
}

static void finish(void) {
  sys3(SYS_sync, 0, 0, 0);
  put("@@ done failures="); putu((u64)failures); end();
  long fd = sys3(SYS_open, "/dev/port", O_WRONLY, 0);
  u8 status = failures ? 1 : 0;
  if (fd >= 0) sys6(SYS_pwrite64, fd, (long)&status, 1, 0x501, 0, 0);
  for (;;) sleep_ms(1000);
}

void init_main(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  sys3(SYS_mkdir, "/proc", 0555, 0);
  sys3(SYS_mkdir, "/sys", 0555, 0);
  sys3(SYS_mkdir, "/dev", 0755, 0);
  sys6(SYS_mount, (long)"proc", (long)"/proc", (long)"proc", 0, 0, 0);
  sys6(SYS_mount, (long)"sysfs", (long)"/sys", (long)"sysfs", 0, 0, 0);
  sys6(SYS_mount, (long)"devtmpfs", (long)"/dev", (long)"devtmpfs", 0, 0, 0);
  char up[64];
  if (read_file("/proc/uptime", up, sizeof up) < 0) copy(up, "?");
  put("@@ userspace uptime="); put(up); end();
  for (long i = 1; i < argc; i++) {
    put("@@ check "); put(argv[i]); end();
    run_check(argv[i]);
  }
  finish();
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call init_main\n hlt\n");
