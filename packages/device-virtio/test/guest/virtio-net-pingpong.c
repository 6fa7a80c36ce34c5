/*
 * Two VMs linked by virtio-net over a host Unix socket. The MAC's last byte picks the role: 0x01 sends
 * "ping N" frames and expects "pong N" back; 0x02 answers each ping. Modern transport, VERSION_1 + MAC,
 * receive queue 0 with four 2 KiB buffers, transmit queue 1; completions are polled.
 */
#include "virtio.h"

#define QSZ 8
#define ROUNDS 3
#define HDR 12
#define WAIT 30000000000UL /* TSC cycles for one completion */

static u8 rx_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 tx_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 rx_bufs[4][2048] __attribute__((aligned(64)));
static u8 tx_buf[2048] __attribute__((aligned(64)));
static struct virtio_pci net;
static struct virtq rxq, txq;
static u8 mac[6];

static void post_rx(int i) {
	virtq_add_buf(&rxq, i, (u64)rx_bufs[i], sizeof rx_bufs[i], 1);
	virtio_notify(&net, &rxq);
}

static int send(const u8 *dst, const char *text) {
	memset(tx_buf, 0, HDR);
	u8 *eth = tx_buf + HDR;
	memcpy(eth, dst, 6);
	memcpy(eth + 6, mac, 6);
	eth[12] = 0x88;
	eth[13] = 0xb5;
	u32 n = strlen(text);
	memcpy(eth + 14, text, n + 1);
	u32 frame = 14 + n + 1 < 60 ? 60 : 14 + n + 1;
	virtq_add_buf(&txq, 0, (u64)tx_buf, HDR + frame, 0);
	virtio_notify(&net, &txq);
	return virtq_poll_used(&txq, WAIT, NULL) == 0;
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
	if (!virtio_pci_find(VIRTIO_ID_NET, 0, &net) || !net.devcfg) { printf("FAIL virtio-net not found\n"); return 10; }
	if (!virtio_negotiate(&net, VIRTIO_F_VERSION_1 | 1u << 5 /* MAC */)) { printf("FAIL features\n"); return 11; }
	if (!virtio_queue_setup(&net, 0, &rxq, rx_ring, QSZ, VIRTIO_NO_VECTOR) ||
	    !virtio_queue_setup(&net, 1, &txq, tx_ring, QSZ, VIRTIO_NO_VECTOR) || !virtio_driver_ok(&net)) {
		printf("FAIL queue setup\n");
		return 12;
	}
	for (int i = 0; i < 6; i++) mac[i] = mmio_read8(net.devcfg + i);
	for (int i = 0; i < 4; i++) post_rx(i);
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
