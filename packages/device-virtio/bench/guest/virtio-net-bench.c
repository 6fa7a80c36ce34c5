/*
 * virtio-net throughput driver for the guest-driven benchmark (and its KVM smoke test). It finds the modern
 * virtio-net function, negotiates VERSION_1 and MAC (so the virtio_net_hdr is 12 bytes), sets up receive queue 0
 * and transmit queue 1 with QSZ entries each and NO interrupts (vector NO_VECTOR and the avail ring's NO_INTERRUPT
 * flag): completions are found by polling the used rings, because on this project's emulated KVM an interrupt is
 * taken only ~1,000 instructions after `sti`. Every receive buffer stays posted; each transmit slot owns one
 * descriptor and a fixed buffer whose frame is written once, so a frame costs the guest a sequence number and a
 * ring entry (guest code is slow here: the VMM moves the bytes).
 *
 * A frame: 12-byte zero header; destination DST_MAC, source the device's MAC, EtherType 0x88B5 (local
 * experimental); at 14 a 32-bit sequence number (counting from 0 per "t" command); from 18 to its end, byte i of
 * the frame is (u8)(i + 12), the low byte of its offset in the buffer, so whole aligned 8-byte words of it can be
 * written and checked at once (an emulated instruction costs about a microsecond here).
 *
 * Commands arrive on COM1, one per line, after "ready":
 *   "t <frame bytes> <frames> [depth]"  transmit: prints "start", keeps <depth> frames (default and at most QSZ:
 *                               the ring full) in the TX ring until <frames> frames were used, then "done <sent>
 *                               <waiting ticks> <total ticks>": the TSC spent polling an unchanged used index (the
 *                               guest waiting for the device), and the case's.
 *   "r <frames> <frame bytes> [c]"  receive: prints "start" (stale frames already drained), "first" at the first
 *                               frame, and at <frames> frames, or once no frame came for QUIET_PASSES polls
 *                               after an "s" line (read only while no frame is pending), "done <received> <bad>
 *                               <waiting ticks> <active ticks> <total ticks>": <bad> counts frames
 *                               whose length is not 12 + <frame bytes>, and with "c" also frames whose destination,
 *                               EtherType, pattern or (not increasing) sequence number is wrong; the ticks are the
 *                               TSC spent idle between bursts (waiting for the device), from the first frame to
 *                               the last one, and to the "done" line, so the host can take its wall time from
 *                               "first" to "done" down to the frames' own.
 * The TSC is read only where the guest starts or stops waiting (a read costs a few microseconds here), so it
 * lengthens the guest's part of a burst, never a frame of a burst.
 *   "q"                         exit 0.
 */
#include "virtio.h"
#include "bench-guest.h"

#define QSZ 256
#define HDR 12
#define BUF 2048
#define MIN_FRAME 60
#define MAX_FRAME 1514
#define ETHERTYPE 0x88b5
/* Idle passes of the receive loop between two looks at COM1: each look is an exit the JS thread serves. */
#define SERIAL_POLL_MASK 4095
/* After "s", the idle passes without a frame that end the case: frames still on their way are counted. */
#define QUIET_PASSES (16 * (SERIAL_POLL_MASK + 1))

/* Fixed guest-physical areas above the program (identity mapped, zero at boot; never in .bss so the runtime does
 * not spend emulated instructions clearing them). */
#define RX_RING 0x800000UL
#define TX_RING 0x810000UL
#define RX_USED_IDX ((volatile u16 *)(RX_RING + VIRTQ_USED_OFFSET(QSZ) + 2))
#define TX_USED_IDX ((volatile u16 *)(TX_RING + VIRTQ_USED_OFFSET(QSZ) + 2))
#define RX_BUFS 0x1000000UL
#define TX_BUFS 0x1100000UL

static const u8 DST_MAC[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x02 };

static struct virtio_pci net;
static struct virtq rxq, txq;
static u64 rx_doorbell, tx_doorbell; /* cached: the loops are emulated instruction by instruction */
static u8 mac[6];

static int setup(void) {
	if (!virtio_negotiate(&net, VIRTIO_F_VERSION_1 | 1UL << 5 /* MAC */)) return 0;
	if (!bench_polled_queue(&net, 0, &rxq, (void *)RX_RING, QSZ, &rx_doorbell)) return 0;
	if (!bench_polled_queue(&net, 1, &txq, (void *)TX_RING, QSZ, &tx_doorbell)) return 0;
	if (!virtio_driver_ok(&net)) return 0;
	for (int i = 0; i < 6; i++) mac[i] = mmio_read8(net.devcfg + i);
	for (u32 s = 0; s < QSZ; s++) virtq_add_buf(&rxq, (u16)s, RX_BUFS + (u64)s * BUF, BUF, 1);
	mmio_write16(rx_doorbell, 0);
	return 1;
}

/* One aligned word of the pattern at buffer offset `o` (a multiple of 8): its bytes o..o+7 never wrap past 255. */
static inline u64 pattern_word(u64 o) { return 0x0706050403020100UL + (o & 0xff) * 0x0101010101010101UL; }

/* Writes the pattern from buffer offset PATTERN_AT to `end`: the unaligned bytes one by one, the rest as words. */
#define PATTERN_AT (HDR + 18)
static void fill_pattern(u8 *b, u32 end) {
	u32 o = PATTERN_AT;
	for (; o % 8 && o < end; o++) b[o] = (u8)o;
	for (; o + 8 <= end; o += 8) *(u64 *)(b + o) = pattern_word(o);
	for (; o < end; o++) b[o] = (u8)o;
}

static int pattern_ok(const u8 *b, u32 end) {
	u32 o = PATTERN_AT;
	for (; o % 8 && o < end; o++)
		if (b[o] != (u8)o) return 0;
	for (; o + 8 <= end; o += 8)
		if (*(const u64 *)(b + o) != pattern_word(o)) return 0;
	for (; o < end; o++)
		if (b[o] != (u8)o) return 0;
	return 1;
}

/* Writes every transmit slot's header and frame (all but the sequence number) and its descriptor. */
static void prepare_tx(u32 frame) {
	for (u32 s = 0; s < QSZ; s++) {
		u8 *b = (u8 *)(TX_BUFS + (u64)s * BUF);
		memset(b, 0, HDR);
		u8 *eth = b + HDR;
		memcpy(eth, DST_MAC, 6);
		memcpy(eth + 6, mac, 6);
		eth[12] = ETHERTYPE >> 8;
		eth[13] = ETHERTYPE & 0xff;
		fill_pattern(b, HDR + frame);
		const struct virtq_buf one = { (u64)b, HDR + frame, 0 };
		virtq_write_chain(&txq, (u16)s, &one, 1);
	}
}

static void post_tx(u32 slot, u32 seq) {
	*(volatile u32 *)(TX_BUFS + (u64)slot * BUF + HDR + 14) = seq;
	virtq_make_available(&txq, (u16)slot);
}

static void transmit(u32 frame, u32 frames, u32 depth) {
	prepare_tx(frame);
	printf("start\n");
	u64 started = rdtsc(), waiting = 0;
	u32 posted = 0, sent = 0;
	for (u32 s = 0; s < depth && posted < frames; s++, posted++) post_tx(s, posted);
	mmio_write16(tx_doorbell, 1);
	while (sent < frames) {
		u16 idx = bench_wait_used(&txq, TX_USED_IDX, 1, &waiting);
		int reposted = 0;
		while (txq.last_used != idx) {
			u32 slot = (u32)virtq_next_used(&txq, NULL);
			sent++;
			if (posted < frames) { post_tx(slot, posted++); reposted = 1; }
		}
		if (reposted) mmio_write16(tx_doorbell, 1);
	}
	printf("done %u %lu %lu\n", sent, waiting, rdtsc() - started);
}

/* 1 when the frame in receive buffer `head` is what a sender of this program wrote after sequence `*last`. */
static int frame_ok(u32 head, long *last) {
	const u8 *eth = (const u8 *)(RX_BUFS + (u64)head * BUF + HDR);
	if (memcmp(eth, mac, 6) != 0 || eth[12] != ETHERTYPE >> 8 || eth[13] != (ETHERTYPE & 0xff)) return 0;
	long seq = *(const u32 *)(eth + 14);
	if (seq <= *last) return 0;
	*last = seq;
	return 1;
}

/* Gives every buffer the device has used back to it, uncounted: frames of an earlier case. */
static void drain_rx(void) {
	int head, any = 0;
	while ((head = virtq_next_used(&rxq, NULL)) >= 0) virtq_make_available(&rxq, (u16)head), any = 1;
	if (any) mmio_write16(rx_doorbell, 0);
}

/* 1 when an "s" arrived on COM1 (other bytes are dropped: the rest of the line). */
static int stop_requested(void) {
	int c;
	while ((c = serial_getc_nowait()) >= 0)
		if (c == 's') return 1;
	return 0;
}

static void receive(u32 frames, u32 frame, int check) {
	drain_rx();
	printf("start\n");
	u32 received = 0, bad = 0, idle = 0;
	int busy = 0, stopping = 0;
	long last_seq = -1;
	u64 first = 0, last = 0, waiting = 0;
	while (received < frames) {
		u16 idx = *RX_USED_IDX;
		if (idx == rxq.last_used) {
			if (busy) last = rdtsc(), busy = 0, idle = 0; /* the end of a burst: maybe the last frame */
			idle++;
			if (stopping ? idle >= QUIET_PASSES : (idle & SERIAL_POLL_MASK) == 0 && stop_requested()) {
				if (stopping) break;
				stopping = 1, idle = 0;
			}
			cpu_relax();
			continue;
		}
		if (!received) {
			first = rdtsc();
			printf("first\n");
		} else if (!busy) {
			waiting += rdtsc() - last; /* idle since the end of the previous burst */
		}
		busy = 1;
		while (rxq.last_used != idx) {
			u32 len = 0;
			u32 head = (u32)virtq_next_used(&rxq, &len);
			received++;
			if (len != HDR + frame) bad++;
			else if (check && (!frame_ok(head, &last_seq) || !pattern_ok((const u8 *)(RX_BUFS + (u64)head * BUF), HDR + frame))) bad++;
			virtq_make_available(&rxq, (u16)head);
		}
		mmio_write16(rx_doorbell, 0);
	}
	if (busy) last = rdtsc();
	u64 end = rdtsc();
	printf("done %u %u %lu %lu %lu\n", received, bad, waiting, received ? last - first : 0, received ? end - first : 0);
}

int main(void) {
	if (!virtio_pci_find(VIRTIO_ID_NET, 0, &net) || !net.devcfg) { printf("FAIL virtio-net (modern) not found\n"); return 10; }
	if (!setup()) { printf("FAIL virtio-net queue setup\n"); return 11; }
	printf("ready qsz %u mac %02x:%02x:%02x:%02x:%02x:%02x\n", QSZ, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	char line[64];
	for (;;) {
		if (!read_line(line, sizeof line)) continue; /* the end of an "s" line read by receive() */
		if (line[0] == 'q') return 0;
		if (line[0] == 's') continue; /* a stop that came after the case ended by itself */
		const char *p = line + 1;
		if (line[0] == 't') {
			u32 frame = read_number(&p), frames = read_number(&p), depth = read_number(&p);
			if (!depth) depth = QSZ;
			if (frame >= MIN_FRAME && frame <= MAX_FRAME && frames && depth <= QSZ) { transmit(frame, frames, depth); continue; }
		} else if (line[0] == 'r') {
			u32 frames = read_number(&p), frame = read_number(&p);
			int check = read_flag(&p, 'c');
			if (frame >= MIN_FRAME && frame <= MAX_FRAME && frames) { receive(frames, frame, check); continue; }
		}
		printf("FAIL bad command '%s'\n", line);
		return 12;
	}
}
