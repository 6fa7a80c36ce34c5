/* Polled split virtqueues and the modern virtio-pci transport (see virtio.h). Kept short: every guest instruction
 * is emulated here (host-kvm.md). */
#include "virtio.h"

void virtq_init(struct virtq *q, void *ring_memory, u16 size) {
	u8 *m = ring_memory;
	u64 used = VIRTQ_USED_OFFSET(size);
	/* Only the rings are cleared, not the padding before the used ring. */
	memset(m, 0, 16UL * size + 6 + 2UL * size);
	memset(m + used, 0, 6 + 8UL * size);
	q->desc = (struct virtq_desc *)m;
	q->avail = (volatile struct virtq_avail *)(m + 16UL * size);
	q->used = (volatile struct virtq_used *)(m + used);
	q->size = size;
	q->next_avail = q->last_used = 0;
}

void virtq_write_chain(struct virtq *q, u16 head, const struct virtq_buf *bufs, u16 n) {
	for (u16 i = 0; i < n; i++) {
		struct virtq_desc *d = &q->desc[head + i];
		d->addr = bufs[i].addr;
		d->len = bufs[i].len;
		d->flags = (bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		d->next = head + i + 1;
	}
}

void virtq_add_chain(struct virtq *q, u16 head, const struct virtq_buf *bufs, u16 n) {
	virtq_write_chain(q, head, bufs, n);
	virtq_make_available(q, head);
}

int virtq_poll_used(struct virtq *q, u64 cycles, u32 *len) {
	u64 end = rdtsc() + cycles;
	int head;
	while ((head = virtq_next_used(q, len)) < 0) {
		if (rdtsc() > end) return -1;
		cpu_relax();
	}
	return head;
}

/* Common configuration registers (virtio 1.x, 4.1.4.3) */
#define CC_DRIVER_FEATURE_SELECT 0x08
#define CC_DRIVER_FEATURE 0x0c
#define CC_STATUS 0x14
#define CC_QUEUE_SELECT 0x16
#define CC_QUEUE_SIZE 0x18
#define CC_QUEUE_MSIX_VECTOR 0x1a
#define CC_QUEUE_ENABLE 0x1c
#define CC_QUEUE_NOTIFY_OFF 0x1e
#define CC_QUEUE_DESC 0x20
#define CC_QUEUE_DRIVER 0x28
#define CC_QUEUE_DEVICE 0x30
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define PCI_CAP_MSIX 0x11
#define PCI_CAP_VENDOR 0x09 /* virtio_pci_cap: type at +3, BAR at +4, offset at +8, notify multiplier at +16 */

static u32 cfg(u8 slot, u16 off, int size) { return pci_cf8_read(0, slot, 0, off, size); }

int virtio_pci_find(u16 device_id, int nth, struct virtio_pci *d) {
	memset(d, 0, sizeof *d);
	for (u8 slot = 0; slot < 32; slot++) {
		if (cfg(slot, 0, 4) != ((u32)device_id << 16 | VIRTIO_VENDOR) || nth-- > 0) continue;
		d->slot = slot;
		for (u8 at = cfg(slot, 0x34, 1); at; at = cfg(slot, at + 1, 1)) {
			u8 id = cfg(slot, at, 1);
			if (id == PCI_CAP_MSIX) d->msix_cap = at;
			if (id != PCI_CAP_VENDOR) continue;
			u64 base = pci_bar_address(0, slot, cfg(slot, at + 4, 1)) + cfg(slot, at + 8, 4);
			switch (cfg(slot, at + 3, 1)) {
			case 1: d->common = base; break;
			case 2: d->notify = base; d->notify_mult = cfg(slot, at + 16, 4); break;
			case 3: d->isr = base; break;
			case 4: d->devcfg = base; break;
			}
		}
		return d->common && d->notify;
	}
	return 0;
}

int virtio_negotiate(struct virtio_pci *d, u64 features) {
	u64 c = d->common;
	/* Memory decode and Bus Master Enable, as Linux's probe does (pci_set_master): without BME the device does no
	 * DMA and sends no MSI-X. */
	pci_cf8_write(0, d->slot, 0, 0x04, 2, cfg(d->slot, 0x04, 2) | 0x6);
	mmio_write8(c + CC_STATUS, 0); /* reset */
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE);
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	for (u32 half = 0; half < 2; half++) {
		mmio_write32(c + CC_DRIVER_FEATURE_SELECT, half);
		mmio_write32(c + CC_DRIVER_FEATURE, (u32)(features >> (32 * half)));
	}
	mmio_write8(c + CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	return (mmio_read8(c + CC_STATUS) & S_FEATURES_OK) != 0;
}

static void write_addr(u64 reg, u64 v) {
	mmio_write32(reg, (u32)v);
	mmio_write32(reg + 4, (u32)(v >> 32));
}

int virtio_queue_setup(struct virtio_pci *d, u16 index, struct virtq *q, void *ring_memory, u16 size, u16 msix_vector) {
	u64 c = d->common;
	virtq_init(q, ring_memory, size);
	q->index = index;
	mmio_write16(c + CC_QUEUE_SELECT, index);
	if (mmio_read16(c + CC_QUEUE_SIZE) < size) return 0; /* reads the device's maximum until written */
	mmio_write16(c + CC_QUEUE_SIZE, size);
	write_addr(c + CC_QUEUE_DESC, (u64)q->desc);
	write_addr(c + CC_QUEUE_DRIVER, (u64)q->avail);
	write_addr(c + CC_QUEUE_DEVICE, (u64)q->used);
	mmio_write16(c + CC_QUEUE_MSIX_VECTOR, msix_vector);
	if (mmio_read16(c + CC_QUEUE_MSIX_VECTOR) != msix_vector) return 0;
	q->notify_off = mmio_read16(c + CC_QUEUE_NOTIFY_OFF);
	mmio_write16(c + CC_QUEUE_ENABLE, 1);
	return 1;
}

int virtio_driver_ok(struct virtio_pci *d) {
	const u8 all = S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
	mmio_write8(d->common + CC_STATUS, all);
	return mmio_read8(d->common + CC_STATUS) == all;
}

int virtio_start_polled(u16 device_id, struct virtio_pci *d, struct virtq *q, void *ring_memory, u16 size) {
	return virtio_pci_find(device_id, 0, d) && virtio_negotiate(d, VIRTIO_F_VERSION_1) &&
	       virtio_queue_setup(d, 0, q, ring_memory, size, VIRTIO_NO_VECTOR) && virtio_driver_ok(d);
}

long virtio_transfer(struct virtio_pci *d, struct virtq *q, const struct virtq_buf *bufs, u16 n, u64 cycles) {
	virtq_add_chain(q, 0, bufs, n);
	virtio_notify(d, q);
	u32 len;
	return virtq_poll_used(q, cycles, &len) < 0 ? -1 : (long)len;
}
