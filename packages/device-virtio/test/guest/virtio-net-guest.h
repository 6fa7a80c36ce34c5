/*
 * What the virtio-net guest programs share: one modern virtio-net function (VERSION_1 + MAC), receive queue 0
 * with four 2 KiB buffers, transmit queue 1, completions polled. Each program is one translation unit.
 */
#include "virtio.h"

#define QSZ 8
#define HDR 12                     /* virtio_net_hdr with num_buffers */
#define WAIT 30000000000UL         /* TSC cycles for one completion */

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

/* Brings the device up, reads the MAC and posts the receive buffers; returns 0, or the exit status of the step
 * that failed (10 not found, 11 features, 12 queue setup) after printing why. */
static int net_start(void) {
	if (!virtio_pci_find(VIRTIO_ID_NET, 0, &net) || !net.devcfg) { printf("FAIL virtio-net not found\n"); return 10; }
	/* Bus Master Enable (command bit 2): without it the device may not touch our memory (Linux: pci_set_master). */
	pci_cf8_write(0, net.slot, 0, 0x04, 2, pci_cf8_read(0, net.slot, 0, 0x04, 2) | 4);
	if (!virtio_negotiate(&net, VIRTIO_F_VERSION_1 | 1u << 5 /* MAC */)) { printf("FAIL features\n"); return 11; }
	if (!virtio_queue_setup(&net, 0, &rxq, rx_ring, QSZ, VIRTIO_NO_VECTOR) ||
	    !virtio_queue_setup(&net, 1, &txq, tx_ring, QSZ, VIRTIO_NO_VECTOR) || !virtio_driver_ok(&net)) {
		printf("FAIL queue setup\n");
		return 12;
	}
	for (int i = 0; i < 6; i++) mac[i] = mmio_read8(net.devcfg + i);
	for (int i = 0; i < 4; i++) post_rx(i);
	return 0;
}

/* Sends the frame built at tx_buf + HDR (zero header, zero-padded to the 60-byte minimum); 1 once it completed. */
static int net_send(u32 frame) {
	memset(tx_buf, 0, HDR);
	if (frame < 60) { memset(tx_buf + HDR + frame, 0, 60 - frame); frame = 60; }
	virtq_add_buf(&txq, 0, (u64)tx_buf, HDR + frame, 0);
	virtio_notify(&net, &txq);
	return virtq_poll_used(&txq, WAIT, NULL) == 0;
}
