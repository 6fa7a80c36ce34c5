/*
 * Two VMs linked by virtio-net over a host Unix socket. The MAC's last byte picks the role: 0x01 sends
 * "ping N" frames and expects "pong N" back; 0x02 answers each ping. Modern transport, VERSION_1 + MAC,
 * receive queue 0 with four 2 KiB buffers, transmit queue 1; completions are polled.
 */
#include "virtio-net-guest.h"

#define ROUNDS 3

static int send(const u8 *dst, const char *text) {
	u8 *eth = tx_buf + HDR;
	memcpy(eth, dst, 6);
	memcpy(eth + 6, mac, 6);
	eth[12] = 0x88;
	eth[13] = 0xb5;
	u32 n = strlen(text);
	memcpy(eth + 14, text, n + 1);
	return net_send(14 + n + 1);
}

/* Waits for a frame; copies its payload text and sender. */
static int receive(char *text, u8 *from) {
	u32 len;
	int head = virtq_poll_used(&rxq, WAIT, &len);
	if (head < 0 || head > 3 || len < HDR + 14) return 0;
	u8 *eth = rx_bufs[head] + HDR;
	if (eth[12] != 0x88 || eth[13] != 0xb5 || memcmp(eth, mac, 6) != 0) return 0;
	memcpy(from, eth + 6, 6);
	memcpy(text, eth + 14, 32);
	post_rx(head);
	return 1;
}

int main(void) {
	int failed = net_start();
	if (failed) return failed;
	int initiator = mac[5] == 1;
	printf("net mac ..:%02x %s, link status %u\n", mac[5], initiator ? "pings" : "answers", mmio_read16(net.devcfg + 6));

	char text[32], expect[32];
	u8 from[6];
	u8 peer[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x02 };
	for (int round = 0; round < ROUNDS; round++) {
		if (initiator) {
			memcpy(expect, "ping 0", 7);
			expect[5] = '0' + round;
			if (!send(peer, expect)) { printf("FAIL tx\n"); return 20; }
			if (!receive(text, from)) { printf("FAIL no pong %d\n", round); return 21; }
			expect[1] = 'o';
			if (memcmp(text, expect, 7) != 0) { printf("FAIL got '%s'\n", text); return 22; }
			printf("ok got '%s'\n", text);
		} else {
			if (!receive(text, from)) { printf("FAIL no ping %d\n", round); return 30; }
			printf("ok got '%s'\n", text);
			text[1] = 'o';
			if (!send(from, text)) { printf("FAIL tx\n"); return 31; }
		}
	}
	return 0;
}
