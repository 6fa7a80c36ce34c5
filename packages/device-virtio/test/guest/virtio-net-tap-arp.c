/*
 * A guest on a host tap (10.213.0.1/24 on the host side, inside a test's network namespace): resolves the
 * host with an ARP request from 10.213.0.2, then pings it (ICMP echo) and checks the echo reply. Modern
 * transport, VERSION_1 + MAC, receive queue 0 with four 2 KiB buffers, transmit queue 1; completions polled.
 * Frames that are not the expected answer (the kernel's own traffic) are skipped.
 */
#include "virtio-net-guest.h"

static u8 host_mac[6];
static const u8 my_ip[4] = { 10, 213, 0, 2 }, host_ip[4] = { 10, 213, 0, 1 };

static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static void put16(u8 *p, u16 v) { p[0] = v >> 8; p[1] = v & 0xff; }

static u16 checksum(const u8 *p, u32 n) {
	u32 sum = 0;
	for (u32 i = 0; i + 1 < n; i += 2) sum += be16(p + i);
	if (n & 1) sum += (u32)p[n - 1] << 8;
	while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

/* Waits for a frame that `match` accepts (others are skipped and their buffers reposted); returns 1 on a match. */
static int receive(int (*match)(const u8 *eth, u32 len)) {
	for (int tries = 0; tries < 64; tries++) {
		u32 len;
		int head = virtq_poll_used(&rxq, WAIT, &len);
		if (head < 0 || head > 3) return 0;
		int ok = len >= HDR + 14 && match(rx_bufs[head] + HDR, len - HDR);
		post_rx(head);
		if (ok) return 1;
	}
	return 0;
}

static int is_arp_reply(const u8 *eth, u32 len) {
	if (len < 42 || be16(eth + 12) != 0x0806 || be16(eth + 20) != 2) return 0;
	if (memcmp(eth + 28, host_ip, 4) != 0 || memcmp(eth + 32, mac, 6) != 0 || memcmp(eth + 38, my_ip, 4) != 0) return 0;
	memcpy(host_mac, eth + 22, 6);
	return 1;
}

static int is_echo_reply(const u8 *eth, u32 len) {
	if (len < 42 || be16(eth + 12) != 0x0800 || eth[23] != 1 || memcmp(eth + 26, host_ip, 4) != 0) return 0;
	const u8 *icmp = eth + 14 + (eth[14] & 0xf) * 4;
	return icmp[0] == 0 && be16(icmp + 4) == 0x7a7a && be16(icmp + 6) == 1 && memcmp(icmp + 8, "vmm-tap", 8) == 0;
}

int main(void) {
	int failed = net_start();
	if (failed) return failed;

	/* ARP: who has 10.213.0.1? tell 10.213.0.2 */
	u8 *eth = tx_buf + HDR;
	memset(eth, 0xff, 6);
	memcpy(eth + 6, mac, 6);
	put16(eth + 12, 0x0806);
	const u8 arp_head[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(eth + 14, arp_head, 8);
	memcpy(eth + 22, mac, 6);
	memcpy(eth + 28, my_ip, 4);
	memset(eth + 32, 0, 6);
	memcpy(eth + 38, host_ip, 4);
	if (!net_send(42)) { printf("FAIL arp tx\n"); return 20; }
	if (!receive(is_arp_reply)) { printf("FAIL no arp reply\n"); return 21; }
	printf("ok arp: 10.213.0.1 is-at %02x:%02x:%02x:%02x:%02x:%02x\n", host_mac[0], host_mac[1], host_mac[2], host_mac[3],
	       host_mac[4], host_mac[5]);

	/* ICMP echo request, id 0x7a7a, sequence 1, payload "vmm-tap\0" */
	memcpy(eth, host_mac, 6);
	put16(eth + 12, 0x0800);
	u8 *ip = eth + 14, *icmp = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, 20 + 16);
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, my_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	put16(ip + 10, checksum(ip, 20));
	memset(icmp, 0, 8);
	icmp[0] = 8;
	put16(icmp + 4, 0x7a7a);
	put16(icmp + 6, 1);
	memcpy(icmp + 8, "vmm-tap", 8);
	put16(icmp + 2, checksum(icmp, 16));
	if (!net_send(14 + 20 + 16)) { printf("FAIL echo tx\n"); return 30; }
	if (!receive(is_echo_reply)) { printf("FAIL no echo reply\n"); return 31; }
	printf("ok ping: echo reply from 10.213.0.1\n");
	return 0;
}
