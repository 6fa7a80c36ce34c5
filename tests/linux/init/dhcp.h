/*
 * dhcp:IFACE — a DHCPv4 client (RFC 2131, options from RFC 2132): DISCOVER, OFFER, REQUEST, ACK over a packet
 * socket (the interface has no address yet, so the frames go out and come in whole), then the leased address,
 * netmask and default route are set with the classic ioctls. Prints
 * "dhcp IFACE address=A/PREFIX router=R dns=D lease=SECONDS server=S ok".
 * Part of init.c (included after its helpers).
 */
enum { AF_PACKET = 17, ETH_P_IP = 0x0800, SIOCGIFINDEX = 0x8933, SIOCADDRT = 0x890b, RTF_UP = 1, RTF_GATEWAY = 2 };
enum { DHCP_DISCOVER = 1, DHCP_OFFER = 2, DHCP_REQUEST = 3, DHCP_ACK = 5, DHCP_NAK = 6 };
enum { DHCP_CLIENT_PORT = 68, DHCP_SERVER_PORT = 67, DHCP_MAGIC = 0x63538263 /* 99.130.83.99 as read little-endian */ };

struct sockaddr_ll { unsigned short family; unsigned short protocol; int ifindex; unsigned short hatype; u8 pkttype; u8 halen; u8 addr[8]; };
struct rtentry {
  unsigned long pad1; struct sockaddr_in dst, gateway, genmask; unsigned short flags; short pad2; unsigned long pad3;
  void *pad4; short metric; char *dev; unsigned long mtu, window; unsigned short irtt;
};

/* The fixed BOOTP part of a DHCP message (RFC 2131 figure 1), then the magic cookie and options. */
struct dhcp_message {
  u8 op, htype, hlen, hops; u32 xid; unsigned short secs, flags; u32 ciaddr, yiaddr, siaddr, giaddr;
  u8 chaddr[16], sname[64], file[128]; u32 magic; u8 options[312];
} __attribute__((packed));

struct dhcp_lease { u32 address, mask, router, dns, server, seconds; int type; };

static void putip(u32 ip) { for (int i = 0; i < 4; i++) { if (i) put("."); putu(ip >> (8 * i) & 0xff); } }
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }
static u32 ip_at(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }

/* Appends one option; returns the next free offset. */
static size_t dhcp_option(u8 *o, size_t at, u8 code, const void *data, u8 n) {
  o[at] = code; o[at + 1] = n;
  for (u8 i = 0; i < n; i++) o[at + 2 + i] = ((const u8 *)data)[i];
  return at + 2 + n;
}

/* Sends a DHCP message from 0.0.0.0:68 to 255.255.255.255:67, wrapped in IPv4 and UDP, to the broadcast MAC. */
static long dhcp_send(long fd, int ifindex, const struct dhcp_message *m, size_t size) {
  static u8 pkt[20 + 8 + sizeof(struct dhcp_message)];
  size_t total = 20 + 8 + size;
  for (size_t i = 0; i < 28; i++) pkt[i] = 0;
  pkt[0] = 0x45; pkt[2] = (u8)(total >> 8); pkt[3] = (u8)total; pkt[8] = 64; pkt[9] = 17; /* UDP */
  for (int i = 16; i < 20; i++) pkt[i] = 0xff;
  unsigned short ck = inet_checksum(pkt, 20);
  pkt[10] = (u8)ck; pkt[11] = (u8)(ck >> 8);
  u8 *udp = pkt + 20;
  udp[1] = DHCP_CLIENT_PORT; udp[3] = DHCP_SERVER_PORT; udp[4] = (u8)((8 + size) >> 8); udp[5] = (u8)(8 + size); /* checksum 0: none */
  for (size_t i = 0; i < size; i++) udp[8 + i] = ((const u8 *)m)[i];
  struct sockaddr_ll to = { AF_PACKET, be16(ETH_P_IP), ifindex, 0, 0, 6, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };
  return sys6(SYS_sendto, fd, (long)pkt, (long)total, 0, (long)&to, sizeof to);
}

/* Waits (up to 2 s) for a reply to `xid` on UDP port 68 and reads its message type and lease options. */
static int dhcp_receive(long fd, u32 xid, struct dhcp_lease *lease) {
  static u8 in[1600];
  for (;;) {
    long r = sys6(SYS_recvfrom, fd, (long)in, sizeof in, 0, 0, 0);
    if (r < 0) return 0; /* timed out */
    size_t ihl = (size_t)(in[0] & 15) * 4;
    if ((in[0] >> 4) != 4 || in[9] != 17 || (size_t)r < ihl + 8 + 240) continue;
    const u8 *udp = in + ihl;
    if ((udp[2] << 8 | udp[3]) != DHCP_CLIENT_PORT) continue;
    const struct dhcp_message *m = (const struct dhcp_message *)(udp + 8);
    if (m->op != 2 || m->xid != xid || m->magic != DHCP_MAGIC) continue;
    const u8 *o = m->options, *stop = udp + 8 + ((size_t)r - ihl - 8 < sizeof *m ? (size_t)r - ihl - 8 : sizeof *m);
    *lease = (struct dhcp_lease){ .address = m->yiaddr };
    while (o < stop && *o != 255) {
      if (*o == 0) { o++; continue; }
      if (o + 2 > stop || o + 2 + o[1] > stop) break;
      u8 code = o[0], n = o[1];
      const u8 *v = o + 2;
      if (code == 53 && n >= 1) lease->type = v[0];
      else if (code == 1 && n >= 4) lease->mask = ip_at(v);
      else if (code == 3 && n >= 4) lease->router = ip_at(v);
      else if (code == 6 && n >= 4) lease->dns = ip_at(v);
      else if (code == 54 && n >= 4) lease->server = ip_at(v);
      else if (code == 51 && n >= 4) lease->seconds = be32(v);
      o += 2 + n;
    }
    if (lease->type) return lease->type;
  }
}

/* One DHCP exchange: sends `type` (with the offered address and server for a REQUEST) up to 5 times until the
   reply `want` (or a NAK) comes. */
static int dhcp_exchange(long fd, int ifindex, const u8 mac[6], u32 xid, int type, int want, struct dhcp_lease *lease) {
  static struct dhcp_message m;
  for (size_t i = 0; i < sizeof m; i++) ((u8 *)&m)[i] = 0;
  m.op = 1; m.htype = 1; m.hlen = 6; m.xid = xid; m.magic = DHCP_MAGIC;
  for (int i = 0; i < 6; i++) m.chaddr[i] = mac[i];
  u8 t = (u8)type;
  static const u8 wanted[] = { 1, 3, 6, 51, 54 }; /* netmask, router, DNS, lease time, server */
  size_t at = dhcp_option(m.options, 0, 53, &t, 1);
  at = dhcp_option(m.options, at, 55, wanted, sizeof wanted);
  if (type == DHCP_REQUEST) {
    at = dhcp_option(m.options, at, 50, &lease->address, 4);
    at = dhcp_option(m.options, at, 54, &lease->server, 4);
  }
  m.options[at++] = 255;
  size_t size = sizeof m - sizeof m.options + at;
  if (size < 300) size = 300; /* the BOOTP minimum some servers expect */
  for (int try = 0; try < 5; try++) {
    long r = dhcp_send(fd, ifindex, &m, size);
    if (r < 0) { fail("dhcp send", r); return 0; }
    struct dhcp_lease got;
    int reply = dhcp_receive(fd, xid, &got);
    if (reply == want || reply == DHCP_NAK) { *lease = got; return reply; }
  }
  return 0;
}

static void dhcp(const char *iface) {
  u8 mac[6] = { 0 };
  if (if_up(iface, mac) < 0) return;
  struct ifreq ifr;
  ifr_name(&ifr, iface, len(iface));
  long sfd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  long r = sfd < 0 ? sfd : sys3(SYS_ioctl, sfd, SIOCGIFINDEX, &ifr);
  int ifindex = *(int *)&ifr.u;
  if (r < 0) { fail("dhcp SIOCGIFINDEX", r); if (sfd >= 0) sys3(SYS_close, sfd, 0, 0); return; }
  long fd = sys3(SYS_socket, AF_PACKET, SOCK_DGRAM, be16(ETH_P_IP));
  if (fd < 0) { fail("dhcp packet socket", fd); sys3(SYS_close, sfd, 0, 0); return; }
  struct sockaddr_ll here = { AF_PACKET, be16(ETH_P_IP), ifindex, 0, 0, 0, { 0 } };
  if ((r = sys3(SYS_bind, fd, &here, sizeof here)) < 0) fail("dhcp bind", r);
  long tv[2] = { 2, 0 };
  sys6(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)tv, sizeof tv, 0);
  u32 xid = (u32)mac[2] << 24 | (u32)mac[3] << 16 | (u32)mac[4] << 8 | mac[5];
  struct dhcp_lease offer = { 0 }, ack = { 0 };
  int got = r < 0 ? 0 : dhcp_exchange(fd, ifindex, mac, xid, DHCP_DISCOVER, DHCP_OFFER, &offer);
  if (got == DHCP_OFFER) got = dhcp_exchange(fd, ifindex, mac, xid, DHCP_REQUEST, DHCP_ACK, &offer) == DHCP_ACK ? DHCP_ACK : -1;
  sys3(SYS_close, fd, 0, 0);
  if (got == DHCP_ACK) ack = offer;
  if (got != DHCP_ACK) {
    sys3(SYS_close, sfd, 0, 0);
    fail(got == 0 ? "dhcp no offer" : "dhcp request refused", got);
    return;
  }
  if (ack.mask == 0) ack.mask = prefix_mask(24);
  if (if_address(iface, ack.address, ack.mask) < 0) { sys3(SYS_close, sfd, 0, 0); return; }
  if (ack.router) {
    struct rtentry rt;
    for (size_t i = 0; i < sizeof rt; i++) ((u8 *)&rt)[i] = 0;
    rt.dst.family = rt.gateway.family = rt.genmask.family = AF_INET;
    rt.gateway.addr = ack.router;
    rt.flags = RTF_UP | RTF_GATEWAY;
    char dev[16];
    copy(dev, iface);
    rt.dev = dev;
    if ((r = sys3(SYS_ioctl, sfd, SIOCADDRT, &rt)) < 0) fail("dhcp SIOCADDRT", r);
  }
  sys3(SYS_close, sfd, 0, 0);
  u32 prefix = 0;
  for (u32 m = ack.mask; m; m >>= 1) prefix += m & 1;
  put("@@ dhcp "); put(iface); put(" address="); putip(ack.address); put("/"); putu(prefix);
  put(" router="); putip(ack.router); put(" dns="); putip(ack.dns); put(" lease="); putu(ack.seconds);
  put(" server="); putip(ack.server); put(" ok"); end();
}
