/*
 * IPv6 checks: the address the kernel configured itself from the router advertisement (SLAAC), and TCP over IPv6.
 * Part of init.c (included after its helpers).
 *   ipv6:IFACE            waits up to 30 s for a global, non-tentative address on IFACE and for the default route,
 *                         prints "ipv6 IFACE address=ADDR/PREFIX router=ADDR ok"
 *   tcp6:[ADDR]:PORT      like tcp: over IPv6; ADDR "router" is the default router found by ipv6: (link-local)
 */
enum { AF_INET6 = 10, IFA_F_TENTATIVE = 0x40 };
struct sockaddr_in6 { unsigned short family; unsigned short port; u32 flowinfo; u8 addr[16]; u32 scope; };

static u8 ipv6_router[16];
static int ipv6_router_ifindex;

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

/* 32 hex digits (as /proc/net prints addresses) to 16 bytes; 0 when malformed. */
static int hex_address(const char *s, u8 out[16]) {
  for (int i = 0; i < 16; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = (u8)(hi << 4 | lo);
  }
  return 1;
}

/* Text form of an address with the longest zero run written "::" (RFC 5952). */
static void put6(const u8 a[16]) {
  int best = -1, bestn = 0;
  for (int i = 0; i < 8;) {
    int n = 0;
    while (i + n < 8 && !a[2 * (i + n)] && !a[2 * (i + n) + 1]) n++;
    if (n > bestn && n > 1) best = i, bestn = n;
    i += n ? n : 1;
  }
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    if (i == best) { put(i == 0 ? "::" : ":"); i += bestn - 1; continue; }
    unsigned v = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    char b[5]; int n = 0;
    for (int sh = 12; sh >= 0; sh -= 4) if ((v >> sh) || n || sh == 0) b[n++] = d[v >> sh & 15];
    b[n] = 0;
    put(b);
    if (i < 7) put(":");
  }
}

/* "x:x::x" text to 16 bytes (RFC 4291 2.2, without the dotted-quad form); the end of the text in *end. */
static int parse_ip6(const char *s, u8 out[16], const char **end) {
  unsigned short g[8]; int n = 0, gap = -1;
  if (s[0] == ':' && s[1] == ':') { gap = 0; s += 2; }
  while (n < 8 && hexval(*s) >= 0) {
    unsigned v = 0; int digits = 0;
    while (hexval(*s) >= 0 && digits < 4) v = v << 4 | (unsigned)hexval(*s++), digits++;
    g[n++] = (unsigned short)v;
    if (s[0] == ':' && s[1] == ':' && gap < 0) { gap = n; s += 2; }
    else if (s[0] == ':' && hexval(s[1]) >= 0) s++;
    else break;
  }
  if (gap < 0 ? n != 8 : n > 7) return 0;
  int zeros = 8 - n, k = 0;
  for (int i = 0; i < n; i++) {
    if (i == gap) for (int z = 0; z < zeros; z++) out[2 * k] = out[2 * k + 1] = 0, k++;
    out[2 * k] = (u8)(g[i] >> 8); out[2 * k + 1] = (u8)g[i]; k++;
  }
  if (gap == n) for (int z = 0; z < zeros; z++) out[2 * k] = out[2 * k + 1] = 0, k++;
  *end = s;
  return 1;
}

/* Finds a field in a /proc/net line: the i-th whitespace-separated word. */
static const char *word(const char *s, int i, size_t *n) {
  for (;;) {
    while (*s == ' ') s++;
    const char *w = s;
    while (*s && *s != ' ' && *s != '\n') s++;
    if (i-- == 0) { *n = (size_t)(s - w); return w; }
    if (!*s || *s == '\n') return 0;
  }
}

static int word_is(const char *w, size_t n, const char *text) { return w && len(text) == n && starts(w, text); }
static unsigned hexnum(const char *w, size_t n) { unsigned v = 0; for (size_t i = 0; i < n; i++) v = v << 4 | (unsigned)hexval(w[i]); return v; }

static void ipv6(const char *iface) {
  u8 mac[6];
  if (if_up(iface, mac) < 0) return;
  static char buf[4096];
  u8 address[16]; unsigned prefix = 0; int have_address = 0, have_router = 0;
  for (int tick = 0; tick < 60 && !(have_address && have_router); tick++) {
    if (tick) sleep_ms(500);
    if (!have_address && read_file("/proc/net/if_inet6", buf, sizeof buf) > 0) {
      for (const char *l = buf; *l; ) {
        size_t n[6]; const char *w[6];
        for (int i = 0; i < 6; i++) w[i] = word(l, i, &n[i]);
        /* scope 00 is global; the address must have passed duplicate address detection */
        if (w[5] && word_is(w[5], n[5], iface) && hexnum(w[3], n[3]) == 0 && !(hexnum(w[4], n[4]) & IFA_F_TENTATIVE) && hex_address(w[0], address)) {
          prefix = hexnum(w[2], n[2]);
          have_address = 1;
          break;
        }
        while (*l && *l != '\n') l++;
        if (*l) l++;
      }
    }
    if (!have_router && read_file("/proc/net/ipv6_route", buf, sizeof buf) > 0) {
      for (const char *l = buf; *l; ) {
        size_t n[10]; const char *w[10];
        for (int i = 0; i < 10; i++) w[i] = word(l, i, &n[i]);
        if (w[9] && word_is(w[9], n[9], iface) && hexnum(w[1], n[1]) == 0 && hex_address(w[4], ipv6_router)) {
          int nonzero = 0;
          for (int i = 0; i < 16; i++) nonzero |= ipv6_router[i];
          if (nonzero) { have_router = 1; break; }
        }
        while (*l && *l != '\n') l++;
        if (*l) l++;
      }
    }
  }
  if (!have_address) { fail("ipv6 no global address", 0); return; }
  if (!have_router) { fail("ipv6 no default route", 0); return; }
  struct ifreq ifr;
  ifr_name(&ifr, iface, len(iface));
  long fd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (fd >= 0 && sys3(SYS_ioctl, fd, SIOCGIFINDEX, &ifr) == 0) ipv6_router_ifindex = *(int *)&ifr.u;
  if (fd >= 0) sys3(SYS_close, fd, 0, 0);
  put("@@ ipv6 "); put(iface); put(" address="); put6(address); put("/"); putu(prefix);
  put(" router="); put6(ipv6_router); put(" ok"); end();
}

static void tcp6(const char *arg) {
  struct sockaddr_in6 to = { AF_INET6, 0, 0, { 0 }, 0 };
  const char *rest = arg;
  if (starts(arg, "[router]")) {
    for (int i = 0; i < 16; i++) to.addr[i] = ipv6_router[i];
    to.scope = (u32)ipv6_router_ifindex;
    rest = arg + 8;
  } else if (*arg != '[' || !parse_ip6(arg + 1, to.addr, &rest) || *rest++ != ']') {
    fail("tcp6 bad argument", 0);
    return;
  }
  if (*rest != ':') { fail("tcp6 bad argument", 0); return; }
  to.port = be16(parse_port(rest + 1));
  long fd = tcp_connect(AF_INET6, &to, sizeof to);
  if (fd < 0) return;
  char what[80] = "tcp6 ";
  copy(what + 5, arg);
  tcp_exchange(what, fd);
}
