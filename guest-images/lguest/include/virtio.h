/* virtio.h: what the guests' virtio drivers (virtcon, virtblk) share: the numbers of abi 7, a legacy
 * vring as the Launcher places it (abi 7.4), and the driver's side of it: making a chain available,
 * kicking, and waiting for the device by HALTing until the queue's interrupt. */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "kernel.h"

#define VIRTIO_ID_BLOCK          2
#define VIRTIO_ID_CONSOLE        3
#define VIRTIO_ID_RNG            4
#define VIRTIO_ACKNOWLEDGE       1
#define VIRTIO_DRIVER            2
#define VIRTIO_DRIVER_OK         4
#define VRING_F_NEXT             1
#define VRING_F_WRITE            2
#define VRING_F_INDIRECT         4
#define VRING_AVAIL_NO_INTERRUPT 1
#define VRING_USED_NO_NOTIFY     1
#define VRING_PAGES              3          /* a 256-entry ring */

struct vq {
	u32 num, irq, ring_phys;
	struct vring_desc *desc;
	volatile u16 *avail;            /* flags, idx, ring[num] */
	volatile u16 *used;             /* flags, idx, then {id u32, len u32}[num] */
	u16 next_avail;                 /* our avail->idx */
	u16 last_used;
	u32 free_head;                  /* where the next descriptors are handed out */
	volatile u32 irqs;              /* interrupts seen (for drivers that count them here) */
};

/* Map guest-physical pages (above RAM: the device pages) at PAGE_OFFSET + phys, writable. */
static inline void virtio_map_phys(u32 phys, u32 pages)
{
	for (u32 i = 0; i < pages; i++)
		mm_map(&kernel_mm, PAGE_OFFSET + phys + i * PAGE_SIZE, phys + i * PAGE_SIZE,
		       _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
}

/* Bytes of the device record at `d` on the descriptor page (abi 7.1): the next one follows. */
static inline u32 virtio_record_size(volatile const u8 *d)
{
	return LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * d[1] + 2 * d[2] + d[3];
}

/* Take the queue the record describes: map its ring, find its three parts, start from nothing, and route
 * its interrupt to `handler`. */
static inline void vq_setup(struct vq *q, const struct lguest_vqconfig *cfg, trap_handler_t handler)
{
	q->num = cfg->num;
	q->irq = cfg->irq;
	q->ring_phys = cfg->pfn << PAGE_SHIFT;
	virtio_map_phys(q->ring_phys, VRING_PAGES);
	u8 *ring = __va(q->ring_phys);
	q->desc = (struct vring_desc *)ring;
	q->avail = (volatile u16 *)(ring + 16 * q->num);
	u32 used_off = (16 * q->num + 2 * (2 + q->num) + LGUEST_VRING_ALIGN - 1) & ~(LGUEST_VRING_ALIGN - 1);
	q->used = (volatile u16 *)(ring + used_off);
	q->next_avail = q->last_used = 0;
	q->free_head = 0;
	set_trap_handler(FIRST_EXTERNAL_VECTOR + q->irq, handler);
	irq_unblock(q->irq);
}

static inline u16 used_idx(struct vq *q) { barrier(); return q->used[1]; }
static inline volatile struct vring_used_elem *used_elem(struct vq *q, u32 i)
{
	return (volatile struct vring_used_elem *)((volatile u8 *)q->used + 4) + (i % q->num);
}

/* Make chain `head` available (not kicked yet). */
static inline void publish(struct vq *q, u32 head)
{
	q->avail[2 + (q->next_avail % q->num)] = head;
	barrier();
	q->next_avail++;
	q->avail[1] = q->next_avail;
	barrier();
}

static inline void kick(struct vq *q)
{
	if (!(q->used[0] & VRING_USED_NO_NOTIFY))
		hcall_notify(q->ring_phys);
}

/* Wait until the Host used everything we made available: HALT until an interrupt each time. */
static inline void wait_used(struct vq *q)
{
	irq_disable();
	while (used_idx(q) != q->next_avail) {
		halt();
		irq_disable();
	}
	irq_enable();
}

#endif
