/*
 * guest-kit virtio helpers: split virtqueues (virtio 1.x, 2.7) and the modern virtio-pci transport (4.1.4), polled,
 * for small test drivers. Include "virtio.h" after (or instead of) "guest.h".
 *
 * What stays in the programs: request layouts (blk headers, net frames), interrupts (MSI-X table entries, INTx),
 * and anything a test pokes on purpose (moved BARs, stale doorbells, the legacy I/O register file).
 */
#ifndef GUEST_KIT_VIRTIO_H
#define GUEST_KIT_VIRTIO_H

#include "guest.h"

#define VIRTIO_VENDOR 0x1af4
/* Modern (virtio 1.x) PCI device IDs are 0x1040 + the virtio device type */
#define VIRTIO_ID_NET 0x1041
#define VIRTIO_ID_BLK 0x1042
#define VIRTIO_ID_CONSOLE 0x1043
#define VIRTIO_ID_RNG 0x1044

#define VIRTIO_F_VERSION_1 (1UL << 32)
#define VIRTIO_NO_VECTOR 0xffff

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2 /* the device writes this buffer */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};
struct virtq_avail {
	u16 flags, idx;
	u16 ring[]; /* [size], then used_event */
};
struct virtq_used_elem {
	u32 id, len;
};
struct virtq_used {
	u16 flags, idx;
	struct virtq_used_elem ring[]; /* [size], then avail_event */
};

/*
 * Ring memory layout (the legacy one, so it serves both transports): the descriptor table, the available ring
 * right after it, the used ring on the next 4 KiB boundary. Memory must be 16-byte aligned, 4 KiB for a legacy
 * PFN.
 */
#define VIRTQ_USED_OFFSET(size) ((16UL * (size) + 6 + 2UL * (size) + 4095) & ~4095UL)
#define VIRTQ_RING_BYTES(size) (VIRTQ_USED_OFFSET(size) + 6 + 8UL * (size))

struct virtq {
	struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	u16 size;       /* entries, a power of two */
	u16 index;      /* the queue's number on its device (written to its doorbell) */
	u16 notify_off; /* modern transport: doorbell = notify + notify_off * notify_mult */
	u16 next_avail; /* the driver's copy of avail->idx */
	u16 last_used;  /* used elements consumed so far */
};

/* Lays the queue out in `ring_memory` (VIRTQ_RING_BYTES(size)) and zeroes the rings. */
void virtq_init(struct virtq *q, void *ring_memory, u16 size);

/* One buffer of a chain */
struct virtq_buf {
	u64 addr;
	u32 len;
	u32 device_writes; /* nonzero: VIRTQ_DESC_F_WRITE */
};

/* Writes descriptors head..head+n-1 as one chain of `bufs` (not yet available). */
void virtq_write_chain(struct virtq *q, u16 head, const struct virtq_buf *bufs, u16 n);
/* Writes the chain and makes it available (no notification). */
void virtq_add_chain(struct virtq *q, u16 head, const struct virtq_buf *bufs, u16 n);
/* One buffer as chain `head` (descriptor `head`), made available (no notification). */
static inline void virtq_add_buf(struct virtq *q, u16 head, u64 addr, u32 len, u32 device_writes) {
	const struct virtq_buf b = { addr, len, device_writes };
	virtq_add_chain(q, head, &b, 1);
}
/*
 * Makes the chain whose descriptors are already written at `head` available (no notification). Inline, like
 * virtq_next_used, with the queue's fields read once: a driver's completion loop runs both per request, and every
 * guest instruction is emulated on this project's hosts.
 */
static inline void virtq_make_available(struct virtq *q, u16 head) {
	volatile struct virtq_avail *avail = q->avail;
	u16 next = q->next_avail;
	avail->ring[next & (q->size - 1)] = head;
	q->next_avail = ++next;
	__asm__ volatile("" ::: "memory"); /* descriptors and ring entry before the index that publishes them */
	avail->idx = next;
}
/* The next used element without waiting: its head (and length in *len when len is not NULL), or -1 if none. */
static inline int virtq_next_used(struct virtq *q, u32 *len) {
	volatile struct virtq_used *used = q->used;
	u16 seen = q->last_used;
	if (used->idx == seen) return -1;
	/* volatile reads stay in program order: the element is read after the index that published it */
	volatile struct virtq_used_elem *e = &used->ring[seen & (q->size - 1)];
	q->last_used = seen + 1;
	if (len) *len = e->len;
	return (int)e->id;
}
/* As virtq_next_used, but waits up to `cycles` TSC cycles for it; -1 on timeout. */
int virtq_poll_used(struct virtq *q, u64 cycles, u32 *len);

/* A modern virtio-pci function on bus 0, as its vendor capabilities (cfg_type 1-4) and MSI-X capability place it */
struct virtio_pci {
	u8 slot;
	u8 msix_cap; /* config offset of the MSI-X capability, 0 if none */
	u32 notify_mult;
	u64 common, notify, isr, devcfg; /* addresses inside the BARs (0 when a structure is absent) */
};

/* Finds the nth (0-based) function with this device ID on bus 0; 1 when found with common and notify structures. */
int virtio_pci_find(u16 device_id, int nth, struct virtio_pci *d);
/* Memory decode and Bus Master Enable on, reset, ACKNOWLEDGE, DRIVER, write `features`, FEATURES_OK; 1 when the
 * device kept FEATURES_OK. */
int virtio_negotiate(struct virtio_pci *d, u64 features);
/*
 * Sets up queue `index` with `size` entries in `ring_memory` (see virtq_init), MSI-X vector `msix_vector`
 * (VIRTIO_NO_VECTOR when polled) and enables it; 0 when the device's queue is smaller or it refused the vector.
 */
int virtio_queue_setup(struct virtio_pci *d, u16 index, struct virtq *q, void *ring_memory, u16 size, u16 msix_vector);
/* Sets DRIVER_OK; 1 when the status reads back as exactly ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK. */
int virtio_driver_ok(struct virtio_pci *d);

/*
 * The whole bring-up of a small polled driver: the first device with this ID, VERSION_1 only, queue 0 with `size`
 * entries in `ring_memory` and no MSI-X vector, DRIVER_OK; 1 when every step worked.
 */
int virtio_start_polled(u16 device_id, struct virtio_pci *d, struct virtq *q, void *ring_memory, u16 size);
/* Posts `bufs` as chain 0, rings the doorbell, waits up to `cycles` TSC cycles for it to be used; the used length or -1. */
long virtio_transfer(struct virtio_pci *d, struct virtq *q, const struct virtq_buf *bufs, u16 n, u64 cycles);

/* The queue's doorbell address; writing the queue index there notifies the device. */
static inline u64 virtio_doorbell(const struct virtio_pci *d, const struct virtq *q) {
	return d->notify + (u64)q->notify_off * d->notify_mult;
}
static inline void virtio_notify(const struct virtio_pci *d, const struct virtq *q) {
	mmio_write16(virtio_doorbell(d, q), q->index);
}

#endif
