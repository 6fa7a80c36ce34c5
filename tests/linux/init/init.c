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
  SYS_mount = 165, SYS_getdents64 = 217, SYS_socket = 41, SYS_connect = 42, SYS_accept = 43, SYS_sendto = 44, SYS_recvfrom = 45, SYS_bind = 49,
  SYS_listen = 50, SYS_setsockopt = 54,
  SYS_mmap = 9, SYS_munmap = 11, SYS_mlock = 149, SYS_poll = 7, SYS_reboot = 169,
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

/* Reads up to `size` bytes of a file, binary as it is. */
static ssize_t read_all(const char *path, void *buf, size_t size) {
  long fd = sys3(SYS_open, path, O_RDONLY, 0);
  if (fd < 0) return fd;
  ssize_t n = 0, r;
  while ((size_t)n < size && (r = sys3(SYS_read, fd, (char *)buf + n, size - n)) > 0) n += r;
  sys3(SYS_close, fd, 0, 0);
  return n;
}

/* A text file without its trailing newline and spaces, NUL-terminated. */
static ssize_t read_file(const char *path, char *buf, size_t size) {
  ssize_t n = read_all(path, buf, size - 1);
  if (n < 0) return n;
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
enum { AF_INET = 2, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, IPPROTO_ICMP = 1, SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_RCVTIMEO = 20 };
enum { SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916, SIOCSIFNETMASK = 0x891c, SIOCGIFHWADDR = 0x8927 };

static void ifr_name(struct ifreq *ifr, const char *name, size_t n) {
  for (size_t i = 0; i < sizeof *ifr; i++) ((u8 *)ifr)[i] = 0;
  for (size_t i = 0; i < n && i < sizeof ifr->name - 1; i++) ifr->name[i] = name[i];
}

static u32 prefix_mask(u32 prefix) { u32 m = prefix ? ~0u << (32 - prefix) : 0; return (m >> 24) | ((m >> 8) & 0xff00) | ((m << 8) & 0xff0000) | (m << 24); }

/* Brings an interface up (IFF_UP) and reads its MAC; 0 on success, else a failure line was printed. */
static long if_up(const char *name, u8 mac[6]) {
  struct ifreq ifr;
  ifr_name(&ifr, name, len(name));
  long fd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { fail("if-up socket", fd); return fd; }
  long r;
  if ((r = sys3(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr)) < 0) fail("if-up SIOCGIFFLAGS", r);
  ifr.u.flags |= 1; /* IFF_UP */
  if (r >= 0 && (r = sys3(SYS_ioctl, fd, SIOCSIFFLAGS, &ifr)) < 0) fail("if-up SIOCSIFFLAGS", r);
  if (r >= 0 && (r = sys3(SYS_ioctl, fd, SIOCGIFHWADDR, &ifr)) == 0) for (int i = 0; i < 6; i++) mac[i] = ifr.u.raw[2 + i];
  sys3(SYS_close, fd, 0, 0);
  return r < 0 ? r : 0;
}

/* Sets an interface's IPv4 address and netmask (both in network byte order) through the classic ioctls. */
static long if_address(const char *name, u32 ip, u32 mask) {
  struct ifreq ifr;
  ifr_name(&ifr, name, len(name));
  long fd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { fail("if-address socket", fd); return fd; }
  long r;
  ifr.u.addr.family = AF_INET;
  ifr.u.addr.addr = ip;
  if ((r = sys3(SYS_ioctl, fd, SIOCSIFADDR, &ifr)) < 0) fail("if-address SIOCSIFADDR", r);
  ifr.u.addr.addr = mask;
  if (r >= 0 && (r = sys3(SYS_ioctl, fd, SIOCSIFNETMASK, &ifr)) < 0) fail("if-address SIOCSIFNETMASK", r);
  sys3(SYS_close, fd, 0, 0);
  return r < 0 ? r : 0;
}

/* net-up:IFACE:A.B.C.D/PREFIX: address and netmask, then IFF_UP. */
static void net_up(const char *arg) {
  const char *colon = arg;
  while (*colon && *colon != ':') colon++;
  char name[16];
  size_t n = (size_t)(colon - arg) < sizeof name - 1 ? (size_t)(colon - arg) : sizeof name - 1;
  for (size_t i = 0; i < n; i++) name[i] = arg[i];
  name[n] = 0;
  const char *rest;
  u32 ip = *colon == ':' ? parse_ip(colon + 1, &rest) : 0;
  u32 prefix = 0;
  if (!ip || *rest != '/') { fail("net-up bad argument", 0); return; }
  for (rest++; *rest >= '0' && *rest <= '9'; rest++) prefix = prefix * 10 + (u32)(*rest - '0');
  u8 mac[6] = { 0 };
  if (if_address(name, ip, prefix_mask(prefix)) < 0 || if_up(name, mac) < 0) return;
  put("@@ net-up "); put(name); put(" mac="); puthex(mac, 6); put(" ok"); end();
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

/* Sends "hello from the guest\n" on a connected socket and prints the line the peer sends back. */
static void tcp_exchange(const char *what, long fd) {
  long tv[2] = { 10, 0 };
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof tv, 0);
  static const char hello[] = "hello from the guest\n";
  long r;
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
  put("@@ "); put(what); put(" got '"); put(in); put("' ok"); end();
}

/* Connects a TCP socket of `family` to `to` (up to 10 tries, 1 s apart); the socket, or -1 after a failure line. */
static long tcp_connect(int family, const void *to, size_t size) {
  long fd = -1, r = -1;
  for (int try = 0; try < 10; try++) {
    fd = sys3(SYS_socket, family, SOCK_STREAM, 0);
    if (fd < 0) { fail("tcp socket", fd); return -1; }
    if ((r = sys3(SYS_connect, fd, to, size)) == 0) return fd;
    sys3(SYS_close, fd, 0, 0);
    sleep_ms(1000);
  }
  fail("tcp connect", r);
  return -1;
}

static unsigned short be16(unsigned v) { return (unsigned short)((v >> 8 & 0xff) | (v & 0xff) << 8); }
static unsigned parse_port(const char *s) { unsigned p = 0; while (*s >= '0' && *s <= '9') p = p * 10 + (unsigned)(*s++ - '0'); return p; }

/* tcp:A.B.C.D:PORT: connects, sends "hello from the guest\n" and prints the line the server sends back. */
static void tcp(const char *arg) {
  const char *rest;
  u32 ip = parse_ip(arg, &rest);
  if (!ip || *rest != ':') { fail("tcp bad argument", 0); return; }
  struct sockaddr_in to = { AF_INET, be16(parse_port(rest + 1)), ip, { 0 } };
  long fd = tcp_connect(AF_INET, &to, sizeof to);
  if (fd < 0) return;
  char what[64] = "tcp ";
  copy(what + 4, arg);
  tcp_exchange(what, fd);
}

/* listen:PORT: a TCP server on 0.0.0.0:PORT for one client (host connections arrive through passt's port
   forward): prints "listen PORT ready", then the client's line, which it answers with "guest got: LINE". */
static void listen_once(const char *arg) {
  unsigned port = parse_port(arg);
  long fd = sys3(SYS_socket, AF_INET, SOCK_STREAM, 0);
  if (fd < 0) { fail("listen socket", fd); return; }
  int one = 1;
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR, (long)&one, sizeof one, 0);
  struct sockaddr_in any = { AF_INET, be16(port), 0, { 0 } };
  long r;
  if ((r = sys3(SYS_bind, fd, &any, sizeof any)) < 0 || (r = sys3(SYS_listen, fd, 1, 0)) < 0) { sys3(SYS_close, fd, 0, 0); fail("listen bind", r); return; }
  long tv[2] = { 120, 0 }; /* accept() honours the receive timeout */
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof tv, 0);
  put("@@ listen "); put(arg); put(" ready"); end();
  long c = sys3(SYS_accept, fd, 0, 0);
  sys3(SYS_close, fd, 0, 0);
  if (c < 0) { fail("listen accept", c); return; }
  long rt[2] = { 10, 0 };
  sys6(SYS_setsockopt, c, SOL_SOCKET, SO_RCVTIMEO, (long)rt, sizeof rt, 0);
  char in[200];
  size_t n = 0;
  while (n < sizeof in - 1 && (r = sys3(SYS_read, c, in + n, sizeof in - 1 - n)) > 0) {
    n += (size_t)r;
    if (in[n - 1] == '\n') break;
  }
  if (n == 0 || in[n - 1] != '\n') { sys3(SYS_close, c, 0, 0); fail("listen no line", r); return; }
  in[n - 1] = 0;
  char reply[240] = "guest got: ";
  copy(reply + len(reply), in);
  copy(reply + len(reply), "\n");
  sys3(SYS_write, c, reply, len(reply));
  sys3(SYS_close, c, 0, 0);
  put("@@ listen "); put(arg); put(" got '"); put(in); put("' ok"); end();
}

#include "dhcp.h"
#include "ipv6.h"

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

/* ---- vfio:VVVV:DDDD:BAR:OFFSET ------------------------------------------------------------------------------
 * A passthrough function with no driver in this kernel, judged by Linux's PCI core and from userspace through
 * sysfs: what the core made of it (BARs, capabilities read through the VMM, PCI Express type), then the test
 * engine (tools/vfio-user-server) at OFFSET in BAR, mmapped, doing a DMA into init's own memory; its expansion ROM
 * when it has one; the first bytes of each I/O BAR. */

enum { PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, PAGE = 4096 };

/* Hex digits with an optional 0x; stops at the first other character. */
static u64 parse_hex(const char *s, const char **end) {
  u64 v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  for (;; s++) {
    u32 d;
    if (*s >= '0' && *s <= '9') d = (u32)(*s - '0');
    else if (*s >= 'a' && *s <= 'f') d = (u32)(*s - 'a' + 10);
    else if (*s >= 'A' && *s <= 'F') d = (u32)(*s - 'A' + 10);
    else break;
    v = v * 16 + d;
  }
  if (end) *end = s;
  return v;
}

/* Hex with at least `digits` digits, no prefix. */
static void putxw(u64 v, int digits) {
  char b[20]; int i = 19; b[i] = 0;
  do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; digits--; } while (v || digits > 0);
  put(b + i);
}
static void putx(u64 v) { put("0x"); putxw(v, 1); }

static u32 crc32(const u8 *p, size_t n) {
  u32 c = ~0u;
  while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1)); }
  return ~c;
}

static u32 vfio_vendor, vfio_device;
static char vfio_bdf[32];
static char vfio_dir[96];

static void vfio_match(const char *dir, const char *name) {
  char p[256], v[32];
  path2(p, dir, name); copy(p + len(p), "/vendor");
  if (read_file(p, v, sizeof v) < 0 || parse_hex(v, 0) != vfio_vendor) return;
  path2(p, dir, name); copy(p + len(p), "/device");
  if (read_file(p, v, sizeof v) < 0 || parse_hex(v, 0) != vfio_device) return;
  if (!vfio_bdf[0] && len(name) < sizeof vfio_bdf) copy(vfio_bdf, name);
}

/* The function's sysfs file `attr`. */
static void vfio_path(char *out, const char *attr) { path2(out, vfio_dir, attr); }

/* Starts a report line: "@@ vfio-WHAT BDF". */
static void vfio_line(const char *what) { put("@@ vfio-"); put(what); put(" "); put(vfio_bdf); }

static void vfio_fail(const char *what, long err) {
  failures++; put("@@ FAIL vfio "); put(vfio_bdf); put(" "); put(what); put(" "); puti(err); end();
}

struct bar_resource { u64 start, size, flags; };
static struct bar_resource vfio_res[7];

/* The `resource` file: one "start end flags" line per resource (BARs 0-5, then the ROM); unused ones are zero. */
static void vfio_resources(void) {
  static char res[2048];
  char p[160];
  for (int i = 0; i < 7; i++) vfio_res[i].start = vfio_res[i].size = vfio_res[i].flags = 0;
  vfio_path(p, "resource");
  if (read_file(p, res, sizeof res) < 0) { vfio_fail("read resource", 0); return; }
  const char *s = res;
  for (int i = 0; i < 7 && *s; i++) {
    u64 start = parse_hex(s, &s);
    while (*s == ' ') s++;
    u64 last = parse_hex(s, &s);
    while (*s == ' ') s++;
    u64 flags = parse_hex(s, &s);
    while (*s && *s != '\n') s++;
    if (*s == '\n') s++;
    if (!start && !last && !flags) continue;
    vfio_res[i].start = start;
    vfio_res[i].size = last - start + 1;
    vfio_res[i].flags = flags;
    vfio_line("bar"); put(" "); putu((u64)i); put(" size="); putx(vfio_res[i].size); put(" flags="); putx(flags); end();
  }
}

static u32 le(const u8 *p, int n) { u32 v = 0; for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* The capability lists as Linux reads them from config space (through the VMM): "OFFSET:ID" each, in list order;
   the extended ones "OFFSET:ID:VERSION"; the PCI Express capability's type and version. */
static void vfio_capabilities(void) {
  static u8 cfg[4096];
  char p[160];
  vfio_path(p, "config");
  ssize_t n = read_all(p, cfg, sizeof cfg);
  if (n < 64) { vfio_fail("read config", n); return; }
  vfio_line("config"); put(" size="); putu((u64)n); put(" command="); putx(le(cfg + 4, 2)); put(" status="); putx(le(cfg + 6, 2)); end();
  int express = -1;
  vfio_line("caps");
  if (!(cfg[6] & 0x10)) put(" none");
  u32 at = cfg[0x34] & 0xfc;
  for (int i = 0; at >= 0x40 && at < 0x100 && (ssize_t)at + 4 <= n && i < 48; i++) {
    put(" "); putxw(at, 2); put(":"); putxw(cfg[at], 2);
    if (cfg[at] == 0x10) express = (int)at;
    at = cfg[at + 1] & 0xfc;
  }
  end();
  if (express >= 0) {
    u32 flags = le(cfg + express + 2, 2);
    vfio_line("pcie"); put(" type="); putu((flags >> 4) & 15); put(" version="); putu(flags & 15); end();
  }
  if (n > 0x100) {
    vfio_line("ecaps");
    at = 0x100;
    if (le(cfg + at, 4) == 0 || le(cfg + at, 4) == 0xffffffffu) put(" none");
    else for (int i = 0; at >= 0x100 && at + 4 <= (u32)n && i < 64; i++) {
      u32 h = le(cfg + at, 4);
      put(" "); putxw(at, 3); put(":"); putxw(h & 0xffff, 4); put(":"); putu((h >> 16) & 15);
      at = (h >> 20) & 0xffc;
    }
    end();
  }
}

/* Decoding on (sysfs `enable`: pci_enable_device), then bus mastering for the engine's DMA through config space. */
static int vfio_enable(void) {
  char p[160];
  vfio_path(p, "enable");
  long r = write_file(p, "1");
  if (r < 0) { vfio_fail("enable", r); return 0; }
  vfio_path(p, "config");
  long fd = sys3(SYS_open, p, O_RDWR, 0);
  if (fd < 0) { vfio_fail("open config", fd); return 0; }
  u8 cmd[2] = { 0, 0 };
  r = sys6(SYS_pread64, fd, (long)cmd, 2, 4, 0, 0);
  if (r == 2) { cmd[0] |= 0x04; r = sys6(SYS_pwrite64, fd, (long)cmd, 2, 4, 0, 0); }
  if (r == 2) r = sys6(SYS_pread64, fd, (long)cmd, 2, 4, 0, 0);
  sys3(SYS_close, fd, 0, 0);
  if (r != 2) { vfio_fail("command register", r); return 0; }
  vfio_line("enabled"); put(" command="); putx(le(cmd, 2)); end();
  return 1;
}

/* Engine registers (tools/vfio-user-server/README.md), as 32-bit indexes. */
enum { E_MAGIC, E_ID, E_SRC_LO, E_SRC_HI, E_DST_LO, E_DST_HI, E_LEN, E_OP, E_PATTERN, E_VECTOR, E_DOORBELL, E_STATUS,
  E_COUNT, E_IRQS, E_SCRATCH, E_CONTROL };
#define ENGINE_MAGIC 0x45545556u

/* A page of init's own memory for the engine's DMA: source in the first half, destination in the second. */
static u8 dma_page[PAGE] __attribute__((aligned(PAGE)));

/* The guest-physical address behind a virtual one, from /proc/self/pagemap (root sees the frame numbers); the guest
   has no IOMMU, so it is also the device's DMA address. 0 when not present. */
static u64 physical_address(const void *va) {
  u64 entry = 0;
  long fd = sys3(SYS_open, "/proc/self/pagemap", O_RDONLY, 0);
  if (fd < 0) return 0;
  long r = sys6(SYS_pread64, fd, (long)&entry, 8, (long)((u64)va / PAGE * 8), 0, 0);
  sys3(SYS_close, fd, 0, 0);
  if (r != 8 || !(entry >> 63)) return 0;
  u64 pfn = entry & ((1ul << 55) - 1);
  return pfn ? pfn * PAGE + ((u64)va & (PAGE - 1)) : 0;
}

static void vfio_dma(volatile u32 *e) {
  enum { N = 256, ADD = 0x35 };
  for (size_t i = 0; i < PAGE; i++) dma_page[i] = 0;
  long r = sys3(SYS_mlock, dma_page, PAGE, 0);
  if (r < 0) { vfio_fail("mlock", r); return; }
  u8 *src = dma_page, *dst = dma_page + PAGE / 2;
  for (int i = 0; i <= N; i++) { src[i] = (u8)(i * 13 + 7); dst[i] = 0xee; }
  u64 phys = physical_address(dma_page);
  if (!phys) { vfio_fail("no physical address in /proc/self/pagemap", 0); return; }
  /* Compiler barriers: the device reads and writes the page behind the compiler's back. */
  __asm__ volatile("" ::: "memory");
  e[E_STATUS] = 7;
  u32 before = e[E_COUNT];
  e[E_SRC_LO] = (u32)phys; e[E_SRC_HI] = (u32)(phys >> 32);
  e[E_DST_LO] = (u32)(phys + PAGE / 2); e[E_DST_HI] = (u32)((phys + PAGE / 2) >> 32);
  e[E_LEN] = N; e[E_OP] = 2; e[E_PATTERN] = ADD;
  e[E_DOORBELL] = 3; /* the DMA without an interrupt: no driver here would handle one */
  u32 status = e[E_STATUS], count = e[E_COUNT];
  e[E_STATUS] = 7;
  __asm__ volatile("" ::: "memory");
  int bad = -1;
  for (int i = 0; i < N && bad < 0; i++) if (dst[i] != (u8)(src[i] + ADD)) bad = i;
  if (bad < 0 && dst[N] != 0xee) bad = N; /* nothing past LEN */
  vfio_line("dma"); put(" phys="); putx(phys); put(" len="); putu(N); put(" status="); putx(status);
  put(" count="); putu(count - before); put(bad < 0 && status == 1 && count == before + 1 ? " ok" : " wrong"); end();
  if (bad >= 0) vfio_fail("dma result differs at byte", bad);
  else if (status != 1 || count != before + 1) vfio_fail("dma status", (long)status);
}

/* The engine through an mmap of sysfs `resourceN`: registers, scratch read-after-write, then the DMA. */
static void vfio_engine(int bar, u64 off) {
  const struct bar_resource *b = &vfio_res[bar];
  if (!b->size || !(b->flags & 0x200)) { vfio_fail("engine BAR is not memory", bar); return; }
  /* A sub-page BAR maps as the page that holds it. */
  u64 in_page = b->start & (PAGE - 1);
  u64 length = (in_page + b->size + PAGE - 1) & ~(u64)(PAGE - 1);
  char p[160], name[16] = "resource";
  name[8] = (char)('0' + bar); name[9] = 0;
  vfio_path(p, name);
  long fd = sys3(SYS_open, p, O_RDWR, 0);
  if (fd < 0) { vfio_fail("open resource", fd); return; }
  long base = sys6(SYS_mmap, 0, (long)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  sys3(SYS_close, fd, 0, 0);
  if (base < 0) { vfio_fail("mmap resource", base); return; }
  volatile u32 *e = (volatile u32 *)(base + (long)in_page + (long)off);
  u32 magic = e[E_MAGIC], id = e[E_ID];
  u32 want = 0xc0de0000u | id;
  e[E_SCRATCH] = want;
  u32 got = e[E_SCRATCH];
  e[E_SCRATCH] = ~want;
  u32 got2 = e[E_SCRATCH];
  int scratch = got == want && got2 == ~want;
  vfio_line("engine"); put(" bar="); putu((u64)bar); put(" off="); putx(off); put(" magic="); putx(magic);
  put(" id="); putu(id); put(scratch ? " scratch=ok" : " scratch=wrong"); end();
  if (magic != ENGINE_MAGIC) vfio_fail("engine magic", (long)magic);
  else if (!scratch) vfio_fail("engine scratch", (long)got);
  else vfio_dma(e);
  sys3(SYS_munmap, base, length, 0);
}

/* The expansion ROM through sysfs: enabled for reading by writing 1 to `rom`, read whole, disabled again. */
static void vfio_rom(void) {
  static u8 rom[256 * 1024];
  char p[160];
  vfio_path(p, "rom");
  if (write_file(p, "1") < 0) return; /* no `rom` file: the function has no ROM */
  ssize_t n = read_all(p, rom, sizeof rom);
  long r = write_file(p, "0");
  if (n <= 0) { vfio_fail("read rom", n); return; }
  if (r < 0) vfio_fail("disable rom", r);
  vfio_line("rom"); put(" size="); putx((u64)n); put(" signature="); puthex(rom, 2); put(" crc32="); putxw(crc32(rom, (size_t)n), 8); end();
}

/* The first 8 bytes of each I/O BAR, read with 4-byte port accesses through sysfs (pci_resource_io). */
static void vfio_io(void) {
  for (int i = 0; i < 6; i++) {
    if (!(vfio_res[i].flags & 0x100) || vfio_res[i].size < 8) continue;
    char p[160], name[16] = "resource";
    name[8] = (char)('0' + i); name[9] = 0;
    vfio_path(p, name);
    long fd = sys3(SYS_open, p, O_RDONLY, 0);
    if (fd < 0) { vfio_fail("open I/O resource", fd); continue; }
    u8 head[8];
    long r = sys6(SYS_pread64, fd, (long)head, 4, 0, 0, 0);
    if (r == 4) r = sys6(SYS_pread64, fd, (long)(head + 4), 4, 4, 0, 0);
    sys3(SYS_close, fd, 0, 0);
    if (r != 4) { vfio_fail("read I/O resource", r); continue; }
    vfio_line("io"); put(" "); putu((u64)i); put(" head="); puthex(head, 8); end();
  }
}

static void vfio(const char *arg) {
  const char *s = arg;
  vfio_vendor = (u32)parse_hex(s, &s);
  if (*s++ != ':') { fail("vfio bad argument", 0); return; }
  vfio_device = (u32)parse_hex(s, &s);
  if (*s++ != ':') { fail("vfio bad argument", 0); return; }
  u64 bar = parse_hex(s, &s);
  if (*s++ != ':' || bar > 5) { fail("vfio bad argument", 0); return; }
  u64 off = parse_hex(s, &s);
  vfio_bdf[0] = 0;
  list_dir("/sys/bus/pci/devices", vfio_match);
  if (!vfio_bdf[0]) { put("@@ FAIL vfio no function "); put(arg); end(); failures++; return; }
  path2(vfio_dir, "/sys/bus/pci/devices", vfio_bdf);
  char p[160], cls[32];
  vfio_path(p, "class");
  if (read_file(p, cls, sizeof cls) < 0) copy(cls, "?");
  put("@@ vfio "); put(vfio_bdf); put(" id="); putxw(vfio_vendor, 4); put(":"); putxw(vfio_device, 4); put(" class="); put(cls); end();
  vfio_resources();
  vfio_capabilities();
  if (!vfio_enable()) return;
  vfio_engine((int)bar, off);
  vfio_rom();
  vfio_io();
}

/* An input event as evdev delivers it on x86_64: a struct timeval, then type, code and value. */
struct input_event { long sec, usec; unsigned short type, code; int value; };
struct pollfd { int fd; short events, revents; };
enum { EV_KEY = 1, KEY_POWER = 116, POLLIN = 1, MAX_INPUTS = 8 };

/*
 * Waits for the power button as a desktop's power daemon does: the kernel's ACPI button driver reports KEY_POWER on
 * an input device; on its press, powers the machine off (Linux enters ACPI S5 through the DSDT's \_S5). Says
 * "poweroff ready" once it listens (the host then presses the button); it never returns.
 */
static void poweroff_on_button(void) {
  struct pollfd fds[MAX_INPUTS];
  int n = 0;
  for (int i = 0; i < MAX_INPUTS; i++) {
    char path[] = "/dev/input/event0";
    path[16] = (char)('0' + i);
    long fd = sys3(SYS_open, path, O_RDONLY, 0);
    if (fd >= 0) fds[n++] = (struct pollfd){ (int)fd, POLLIN, 0 };
  }
  if (n == 0) { fail("poweroff: no /dev/input/event*", 0); return; }
  put("@@ poweroff ready inputs="); putu((u64)n); end();
  for (;;) {
    long r = sys3(SYS_poll, fds, n, -1);
    if (r < 0) { fail("poweroff: poll", r); return; }
    for (int i = 0; i < n; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      struct input_event ev[16];
      long got = sys3(SYS_read, fds[i].fd, ev, sizeof ev);
      for (long k = 0; k < got / (long)sizeof ev[0]; k++) {
        if (ev[k].type != EV_KEY || ev[k].code != KEY_POWER || ev[k].value != 1) continue;
        put("@@ poweroff KEY_POWER on event"); putu((u64)i); end();
        sys3(SYS_sync, 0, 0, 0);
        r = sys6(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, 0, 0, 0); /* LINUX_REBOOT_CMD_POWER_OFF */
        fail("poweroff: reboot", r);
        return;
      }
    }
  }
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
  else if (starts(arg, "tcp6:")) tcp6(arg + 5);
  else if (starts(arg, "listen:")) listen_once(arg + 7);
  else if (starts(arg, "dhcp:")) dhcp(arg + 5);
  else if (starts(arg, "ipv6:")) ipv6(arg + 5);
  else if (starts(arg, "vfio:")) vfio(arg + 5);
  else if (eq(arg, "poweroff")) poweroff_on_button();
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
