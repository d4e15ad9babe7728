/* virtblk: a minimal driver for the Launcher's virtio block and entropy devices (abi 7.1-7.4; run with
 * `--block FILE --rng`). Lists the devices on the descriptor page, negotiates each (feature bits, status
 * ACKNOWLEDGE|DRIVER|DRIVER_OK), reads the block device's capacity from its config, then:
 *   - reads some sectors and prints their first bytes and FNV-1a checksums (the test knows the disk);
 *   - reads 8 sectors in one request, and 8 requests behind one kick;
 *   - writes a text pattern ("virtblk wrote sector N\n" repeated) to sectors 16-17 (one request, two data
 *     descriptors), 20 (with the BARRIER bit) and the last sector, and reads each back;
 *   - sends FLUSH and a SCSI command (UNSUPP), reads and writes past the end (IOERR, nothing moved);
 *   - resets the device (status 0) and uses it again;
 *   - takes random bytes from the rng twice (not all zero, not the same twice).
 * Each request's used entry (our chain, the length the device wrote) and its one interrupt are checked
 * silently (a failure is a FAIL like any check).
 * Every line it prints is deterministic for a given disk (no random values). Missing devices are reported
 * and skipped.
 *
 * Command line: bad=CASE gives the Host one malformed request, which must kill us: header (an 8-byte
 * header), nostatus (no writable descriptor), loop (a block chain whose data descriptor links to
 * itself), rngout (a readable descriptor on the rng's queue). */
#include "virtio.h"

#define VIRTIO_BLK_F_BARRIER     0
#define VIRTIO_BLK_F_SEG_MAX     2
#define VIRTIO_BLK_T_IN          0
#define VIRTIO_BLK_T_OUT         1
#define VIRTIO_BLK_T_SCSI_CMD    2
#define VIRTIO_BLK_T_FLUSH       4
#define VIRTIO_BLK_T_BARRIER     0x80000000u
#define VIRTIO_BLK_S_OK          0
#define VIRTIO_BLK_S_IOERR       1
#define VIRTIO_BLK_S_UNSUPP      2
#define SECTOR                   512

struct dev {
	volatile u8 *desc;              /* the record on the descriptor page */
	u32 index;                      /* its place in the list (0 = first) */
	struct vq vq;                   /* each of our devices has one queue */
};

static volatile u8 *desc_page;
static u32 desc_page_phys;
static struct dev blk, rng;
static u32 checks;

static void ok(int cond, const char *what)
{
	check(cond, "%s", what);
	checks++;
}

/* A check made for every request: silent unless it fails. */
#define expect(cond, ...) do { if (!(cond)) check(0, __VA_ARGS__); } while (0)

static void vq_interrupt(struct trap_frame *f)
{
	u32 irq = f->vector - FIRST_EXTERNAL_VECTOR;
	if (blk.desc && blk.vq.irq == irq)
		blk.vq.irqs++;
	if (rng.desc && rng.vq.irq == irq)
		rng.vq.irqs++;
}

/* ---- the descriptor record ---- */
static u32 num_vq(struct dev *d) { return d->desc[1]; }
static u32 feature_len(struct dev *d) { return d->desc[2]; }
static u32 config_len(struct dev *d) { return d->desc[3]; }
static volatile u8 *features(struct dev *d) { return d->desc + LGUEST_DEVICE_DESC_SIZE + LGUEST_VQCONFIG_SIZE * num_vq(d); }
static volatile u8 *config(struct dev *d) { return features(d) + 2 * feature_len(d); }

static void set_status(struct dev *d, u8 s)
{
	d->desc[4] = s;
	barrier();
	hcall_notify(desc_page_phys + (u32)(d->desc - desc_page));
}

/* List the devices (printing their types in order) and find ours. */
static void scan(void)
{
	char line[64];
	u32 n = 0, off = 0, len = 0;
	desc_page_phys = (u32)boot_mem_size;
	virtio_map_phys(desc_page_phys, 1);
	desc_page = (volatile u8 *)__va(desc_page_phys);
	while (off + LGUEST_DEVICE_DESC_SIZE <= PAGE_SIZE && desc_page[off]) {
		volatile u8 *d = desc_page + off;
		len += snprintf(line + len, sizeof(line) - len, " %u", d[0]);
		if (d[0] == VIRTIO_ID_BLOCK && !blk.desc) {
			blk.desc = d;
			blk.index = n;
		}
		if (d[0] == VIRTIO_ID_RNG && !rng.desc) {
			rng.desc = d;
			rng.index = n;
		}
		n++;
		off += virtio_record_size(d);
	}
	printk("virtblk: %u devices on the bus, types:%s\n", n, line);
}

static void setup_vq(struct dev *d, const char *name)
{
	struct lguest_vqconfig cfg;
	memcpy(&cfg, (const void *)(d->desc + LGUEST_DEVICE_DESC_SIZE), sizeof(cfg));
	struct vq *q = &d->vq;
	vq_setup(q, &cfg, vq_interrupt);
	printk("virtblk: %s: queue of %u entries, IRQ %u, ring at the descriptor page + %u pages\n", name,
	       q->num, q->irq, (q->ring_phys - desc_page_phys) / PAGE_SIZE);
	check(q->num == 256 && q->ring_phys > desc_page_phys && q->irq > 0 && q->irq < 32,
	      "%s: a queue of 256 above the descriptor page, a device IRQ", name);
	checks++;
}

/* ---- the ring ---- */
static void set_desc(struct vq *q, u32 i, void *buf, u32 len, u16 flags, u16 next)
{
	q->desc[i].addr = __pa(buf);
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

/* n consecutive descriptors (mod num), chained with NEXT by the caller. */
static u32 alloc_desc(struct vq *q, u32 n)
{
	if (q->free_head + n > q->num)
		q->free_head = 0;
	u32 head = q->free_head;
	q->free_head += n;
	return head;
}

/* ---- block requests ---- */
struct blk_req {
	struct virtio_blk_outhdr { u32 type, ioprio; u64 sector; } hdr;
	u8 status;
	u32 head;
};

/* Queue one request: header, nbufs data buffers (each len bytes, from bufs[i]), status byte. */
static void blk_queue(struct blk_req *r, u32 type, u64 sector, u8 **bufs, u32 nbufs, u32 len)
{
	struct vq *q = &blk.vq;
	u32 write = (type & ~VIRTIO_BLK_T_BARRIER) == VIRTIO_BLK_T_OUT;
	r->hdr.type = type;
	r->hdr.ioprio = 0;
	r->hdr.sector = sector;
	r->status = 0xEE;
	u32 h = r->head = alloc_desc(q, nbufs + 2);
	set_desc(q, h, &r->hdr, sizeof(r->hdr), VRING_F_NEXT, h + 1);
	for (u32 i = 0; i < nbufs; i++)
		set_desc(q, h + 1 + i, bufs[i], len, VRING_F_NEXT | (write ? 0 : VRING_F_WRITE), h + 2 + i);
	set_desc(q, h + 1 + nbufs, &r->status, 1, VRING_F_WRITE, 0);
	publish(q, h);
}

/* Take the next used entry; check it is request r's, with the length expected. */
static void blk_reap(struct blk_req *r, u32 want_len)
{
	volatile struct vring_used_elem *e = used_elem(&blk.vq, blk.vq.last_used++);
	expect(e->id == r->head && e->len == want_len, "used entry %u (want %u), length %u (want %u)",
	      e->id, r->head, e->len, want_len);
}

/* One request, synchronously: returns the status byte. */
static u8 blk_rw(u32 type, u64 sector, u8 **bufs, u32 nbufs, u32 len)
{
	static struct blk_req r;
	u32 before = blk.vq.irqs;
	blk_queue(&r, type, sector, bufs, nbufs, len);
	kick(&blk.vq);
	wait_used(&blk.vq);
	u32 read = (type & ~VIRTIO_BLK_T_BARRIER) == VIRTIO_BLK_T_IN && r.status == VIRTIO_BLK_S_OK;
	blk_reap(&r, 1 + (read ? nbufs * len : 0));
	expect(blk.vq.irqs == before + 1, "one interrupt for the request of type 0x%x", type);
	return r.status;
}

static u8 blk_one(u32 type, u64 sector, u8 *buf, u32 sectors)
{
	return blk_rw(type, sector, &buf, 1, sectors * SECTOR);
}

static u32 fnv1a(const u8 *p, u32 n)
{
	u32 h = 0x811c9dc5u;
	for (u32 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

/* "virtblk: WHAT N: the first 8 bytes, the FNV-1a checksum of all n" */
static void show(const char *what, u64 sector, const u8 *p, u32 n)
{
	printk("virtblk: %s %u: %02x %02x %02x %02x %02x %02x %02x %02x, fnv1a 0x%08x\n", what, (u32)sector,
	       p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], fnv1a(p, n));
}

static void pattern(u8 *p, u32 sector)
{
	char line[32];
	u32 len = snprintf(line, sizeof(line), "virtblk wrote sector %u\n", sector);
	for (u32 i = 0; i < SECTOR; i++)
		p[i] = line[i % len];
}

static u8 buf[8 * SECTOR] __attribute__((aligned(16)));
static u8 buf2[8 * SECTOR] __attribute__((aligned(16)));

static void negotiate_block(void)
{
	ok(num_vq(&blk) == 1 && feature_len(&blk) == 1 && config_len(&blk) == 16,
	   "block: 1 queue, 1 byte of features, 16 bytes of config");
	volatile u8 *f = features(&blk);
	check(f[0] == ((1 << VIRTIO_BLK_F_BARRIER) | (1 << VIRTIO_BLK_F_SEG_MAX)) && f[1] == 0,
	      "block: offers BARRIER and SEG_MAX (0x%02x), nothing accepted yet (0x%02x)", f[0], f[1]);
	checks++;
	set_status(&blk, VIRTIO_ACKNOWLEDGE);
	set_status(&blk, VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER);
	f[1] = f[0];
	set_status(&blk, VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	ok(blk.desc[4] == 7, "block: status ACKNOWLEDGE|DRIVER|DRIVER_OK");
}

static void test_block(const char *bad)
{
	u64 cap;
	u32 size_max, seg_max;
	memcpy(&cap, (const void *)config(&blk), 8);
	memcpy(&size_max, (const void *)(config(&blk) + 8), 4);
	memcpy(&seg_max, (const void *)(config(&blk) + 12), 4);
	printk("virtblk: block: capacity %llu sectors (%llu bytes), seg_max %u\n", cap, cap * SECTOR, seg_max);
	ok(seg_max == 254, "block: seg_max 254 (the ring less header and status)");
	ok(blk.index == 1, "block: the second device, after the console");
	setup_vq(&blk, "block");
	negotiate_block();
	irq_enable();
	check(cap >= 32, "block: at least 32 sectors (%llu)", cap);
	checks++;

	if (bad && (!strcmp(bad, "header") || !strcmp(bad, "nostatus") || !strcmp(bad, "loop"))) {
		struct vq *q = &blk.vq;
		static struct blk_req r;
		u32 h = alloc_desc(q, 3);
		printk("virtblk: giving the Host a bad block request: %s\n", bad);
		r.hdr.type = VIRTIO_BLK_T_IN;
		r.hdr.sector = 0;
		if (!strcmp(bad, "header")) {
			set_desc(q, h, &r.hdr, 8, VRING_F_NEXT, h + 1);
			set_desc(q, h + 1, &r.status, 1, VRING_F_WRITE, 0);
		} else if (!strcmp(bad, "nostatus")) {
			set_desc(q, h, &r.hdr, sizeof(r.hdr), VRING_F_NEXT, h + 1);
			set_desc(q, h + 1, buf, SECTOR, 0, 0);
		} else {
			set_desc(q, h, &r.hdr, sizeof(r.hdr), VRING_F_NEXT, h + 1);
			set_desc(q, h + 1, buf, SECTOR, VRING_F_NEXT | VRING_F_WRITE, h + 1);
		}
		publish(q, h);
		hcall_notify(q->ring_phys);
		panic("virtblk: the Host accepted bad=%s", bad);
	}

	/* Reads. */
	u64 last = cap - 1;
	u64 sectors[4] = { 0, 1, 5, last };
	for (u32 i = 0; i < 4; i++) {
		memset(buf, 0xEE, SECTOR);
		check(blk_one(VIRTIO_BLK_T_IN, sectors[i], buf, 1) == VIRTIO_BLK_S_OK, "read sector %u: OK", (u32)sectors[i]);
		checks++;
		show("sector", sectors[i], buf, SECTOR);
	}
	memset(buf, 0xEE, sizeof(buf));
	ok(blk_one(VIRTIO_BLK_T_IN, 8, buf, 8) == VIRTIO_BLK_S_OK, "read 8 sectors in one request: OK");
	show("8 sectors from", 8, buf, 8 * SECTOR);

	/* 8 requests behind one kick: one interrupt, used in order, the same bytes. */
	static struct blk_req rs[8];
	u32 before = blk.vq.irqs;
	memset(buf2, 0xEE, sizeof(buf2));
	for (u32 i = 0; i < 8; i++) {
		u8 *p = buf2 + i * SECTOR;
		blk_queue(&rs[i], VIRTIO_BLK_T_IN, 8 + i, &p, 1, SECTOR);
	}
	kick(&blk.vq);
	wait_used(&blk.vq);
	for (u32 i = 0; i < 8; i++)
		blk_reap(&rs[i], 1 + SECTOR);
	u32 all_ok = 1;
	for (u32 i = 0; i < 8; i++)
		all_ok &= rs[i].status == VIRTIO_BLK_S_OK;
	ok(all_ok && blk.vq.irqs == before + 1, "8 requests, one kick: all OK, used in order, one interrupt");
	ok(memcmp(buf, buf2, sizeof(buf)) == 0, "they read what the 8-sector request read");

	/* Writes, each read back. */
	u8 *two[2] = { buf, buf + SECTOR };
	pattern(buf, 16);
	pattern(buf + SECTOR, 17);
	ok(blk_rw(VIRTIO_BLK_T_OUT, 16, two, 2, SECTOR) == VIRTIO_BLK_S_OK, "write sectors 16-17 (two data descriptors): OK");
	memset(buf2, 0, sizeof(buf2));
	ok(blk_one(VIRTIO_BLK_T_IN, 16, buf2, 2) == VIRTIO_BLK_S_OK && memcmp(buf, buf2, 2 * SECTOR) == 0,
	   "sectors 16-17 read back as written");
	show("wrote sector", 16, buf2, SECTOR);
	pattern(buf, 20);
	ok(blk_one(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER, 20, buf, 1) == VIRTIO_BLK_S_OK, "write sector 20 with BARRIER: OK");
	memset(buf2, 0, SECTOR);
	ok(blk_one(VIRTIO_BLK_T_IN | VIRTIO_BLK_T_BARRIER, 20, buf2, 1) == VIRTIO_BLK_S_OK && memcmp(buf, buf2, SECTOR) == 0,
	   "sector 20 read back (BARRIER read) as written");
	pattern(buf, (u32)last);
	ok(blk_one(VIRTIO_BLK_T_OUT, last, buf, 1) == VIRTIO_BLK_S_OK, "write the last sector: OK");
	memset(buf2, 0, SECTOR);
	ok(blk_one(VIRTIO_BLK_T_IN, last, buf2, 1) == VIRTIO_BLK_S_OK && memcmp(buf, buf2, SECTOR) == 0,
	   "the last sector read back as written");

	/* What the device does not do. */
	ok(blk_rw(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0) == VIRTIO_BLK_S_UNSUPP, "FLUSH (not offered): UNSUPP");
	ok(blk_one(VIRTIO_BLK_T_SCSI_CMD, 0, buf, 1) == VIRTIO_BLK_S_UNSUPP, "a SCSI command: UNSUPP");

	/* Past the end: IOERR, nothing read or written. */
	memset(buf2, 0x5A, sizeof(buf2));
	ok(blk_one(VIRTIO_BLK_T_IN, cap, buf2, 1) == VIRTIO_BLK_S_IOERR, "read at sector capacity: IOERR");
	ok(blk_one(VIRTIO_BLK_T_IN, last, buf2, 2) == VIRTIO_BLK_S_IOERR, "read across the end: IOERR");
	ok(blk_one(VIRTIO_BLK_T_IN, cap + (1ull << 40), buf2, 1) == VIRTIO_BLK_S_IOERR, "read at sector 2^40 past the end: IOERR");
	u32 untouched = 1;
	for (u32 i = 0; i < 2 * SECTOR; i++)
		untouched &= buf2[i] == 0x5A;
	ok(untouched, "the failed reads wrote nothing into the buffer");
	pattern(buf, 9999);
	pattern(buf + SECTOR, 9999);
	ok(blk_one(VIRTIO_BLK_T_OUT, last, buf, 2) == VIRTIO_BLK_S_IOERR, "write across the end: IOERR");
	ok(blk_one(VIRTIO_BLK_T_OUT, cap, buf, 1) == VIRTIO_BLK_S_IOERR, "write at sector capacity: IOERR");
	memset(buf2, 0, SECTOR);
	blk_one(VIRTIO_BLK_T_IN, last, buf2, 1);
	pattern(buf, (u32)last);
	ok(memcmp(buf, buf2, SECTOR) == 0, "the last sector is unchanged by the failed write");

	/* Reset (status 0): features cleared, ring zeroed; negotiate again and use it. */
	set_status(&blk, 0);
	ok(features(&blk)[1] == 0 && used_idx(&blk.vq) == 0 && blk.vq.avail[1] == 0,
	   "status 0 resets the device: accepted features cleared, ring zeroed");
	setup_vq(&blk, "block");
	negotiate_block();
	memset(buf2, 0, SECTOR);
	ok(blk_one(VIRTIO_BLK_T_IN, 16, buf2, 1) == VIRTIO_BLK_S_OK, "after the reset, a read works");
	show("again sector", 16, buf2, SECTOR);
}

/* ---- rng ---- */
static u32 rng_take(u8 *p, u32 n, u32 split)
{
	struct vq *q = &rng.vq;
	u32 before = q->irqs;
	u32 h = alloc_desc(q, 2);
	set_desc(q, h, p, split, VRING_F_WRITE | VRING_F_NEXT, h + 1);
	set_desc(q, h + 1, p + split, n - split, VRING_F_WRITE, 0);
	publish(q, h);
	kick(q);
	wait_used(q);
	volatile struct vring_used_elem *e = used_elem(q, q->last_used++);
	expect(e->id == h && q->irqs == before + 1, "rng: used entry %u (want %u), one interrupt", e->id, h);
	return e->len;
}

static void test_rng(const char *bad)
{
	static u8 r1[64], r2[64];
	ok(num_vq(&rng) == 1 && feature_len(&rng) == 0 && config_len(&rng) == 0, "rng: 1 queue, no features, no config");
	setup_vq(&rng, "rng");
	set_status(&rng, VIRTIO_ACKNOWLEDGE);
	set_status(&rng, VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER);
	set_status(&rng, VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	irq_enable();
	if (bad && !strcmp(bad, "rngout")) {
		struct vq *q = &rng.vq;
		u32 h = alloc_desc(q, 2);
		printk("virtblk: giving the Host a bad rng chain: %s\n", bad);
		set_desc(q, h, r1, 16, VRING_F_NEXT, h + 1);
		set_desc(q, h + 1, r2, 16, VRING_F_WRITE, 0);
		publish(q, h);
		hcall_notify(q->ring_phys);
		panic("virtblk: the Host accepted bad=%s", bad);
	}
	ok(rng_take(r1, sizeof(r1), 16) == sizeof(r1), "rng: 64 bytes in two buffers (16 + 48)");
	ok(rng_take(r2, sizeof(r2), 40) == sizeof(r2), "rng: 64 more (40 + 24)");
	u32 nonzero = 0;
	for (u32 i = 0; i < sizeof(r1); i++)
		nonzero |= r1[i] | r2[i];
	ok(nonzero && memcmp(r1 + 8, r2 + 8, 56) != 0 && memcmp(r1, r1 + 16, 16) != 0,
	   "rng: the bytes are not all zero, and differ between and within the reads");
}

void guest_main(void)
{
	char arg[16];
	const char *bad = cmdline_value("bad", arg, sizeof(arg)) ? arg : NULL;
	printk("virtblk: looking for the block and entropy devices\n");
	scan();
	if (desc_page[0] == VIRTIO_ID_CONSOLE)
		printk("virtblk: the console comes first\n");
	if (blk.desc)
		test_block(bad);
	else
		printk("virtblk: no block device (run with --block FILE)\n");
	if (rng.desc) {
		if (blk.desc)
			ok(rng.index == 2, "rng: after the console and the block device");
		test_rng(bad);
	} else {
		printk("virtblk: no entropy device (run with --rng)\n");
	}
	if (bad)
		panic("virtblk: bad=%s needs the device it misuses", bad);
	printk("virtblk: summary: %u checks passed, %u block and %u rng interrupts\n", checks, blk.vq.irqs, rng.vq.irqs);
	printk("virtblk: done\n");
	irq_disable();
	power_off();
}
