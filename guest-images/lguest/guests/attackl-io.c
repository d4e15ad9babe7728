/* attackl-io: hostile acts against the Launcher and its devices (issue 10), one per run, chosen with
 * `--cmdline case=NAME`. The Host must stay bounded, interruptible and honest whatever they do; the guest
 * itself checks nothing (test/guests/isolation-launcher.test.ts watches the Launcher from outside).
 *
 *   case=kick64g    one console NOTIFY naming 64 GiB: every output descriptor is the same 1 MiB buffer,
 *                   chained 0 -> 1 -> ... -> 255 (a legal chain of 256), and the 256 avail entries all
 *                   name head 0. Then prints "attackl: kick returned" and halts for ever.
 *   case=stream     total=N: N MiB through the virtio console (one 1 MiB chain of 16 x 64 KiB per kick,
 *                   each waited for), lines of 64 bytes; then "attackl: stream done" and power off.
 *   case=early      total=N: N MiB through the early console (NOTIFY of a 4095-byte string, 256 per MiB
 *                   rounded up); then "attackl: early done" and power off.
 *   case=shutdown   SHUTDOWN (power off) with a message made to forge lines on the Host's stderr:
 *                   newlines, "guest killed:", ESC sequences, CR, a C1 CSI byte.
 *   case=smp        (--cpus 2) vCPU 0 prints "attackl: vCPU 0 alive", starts vCPU 1, which spins, and
 *                   halts for ever: for the Launcher's handling of a vCPU worker that fails.
 *   case=rng64      (--rng) 256 chains of 256 x 1 MiB writable descriptors on the entropy queue, one kick.
 *   case=blk64      (--block FILE of >= 256 MiB) 256 read requests of 254 x 1 MiB each, one kick.
 *   case=idle       prints "attackl: idle" and halts for ever (for signals sent to the Launcher).
 * Every case that does not end by itself halts for ever (the tests stop it with --timeout or a signal). */
#include "virtio.h"

#define MIB (1u << 20)

static volatile u8 *desc_page;
static u32 desc_page_phys;
static u8 big[MIB] __attribute__((aligned(PAGE_SIZE)));
static volatile u32 irqs;

static void vq_interrupt(struct trap_frame *f)
{
	(void)f;
	irqs++;
}

/* The record of the first device of `type`, or NULL. */
static volatile u8 *find_device(u8 type)
{
	desc_page_phys = (u32)boot_mem_size;
	virtio_map_phys(desc_page_phys, 1);
	desc_page = (volatile u8 *)__va(desc_page_phys);
	u32 off = 0;
	while (off + LGUEST_DEVICE_DESC_SIZE <= PAGE_SIZE && desc_page[off]) {
		volatile u8 *d = desc_page + off;
		if (d[0] == type)
			return d;
		off += virtio_record_size(d);
	}
	return NULL;
}

/* Find device `type`, set it up to DRIVER_OK, take its queue `i`. */
static void open_queue(u8 type, u32 i, struct vq *q)
{
	volatile u8 *d = find_device(type);
	if (!d)
		panic("attackl: no device of type %u", type);
	struct lguest_vqconfig cfg;
	memcpy(&cfg, (const void *)(d + LGUEST_DEVICE_DESC_SIZE + i * LGUEST_VQCONFIG_SIZE), sizeof(cfg));
	vq_setup(q, &cfg, vq_interrupt);
	d[4] = VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER | VIRTIO_DRIVER_OK;
	barrier();
	hcall_notify(desc_page_phys + (u32)(d - desc_page));
}

static void set_desc(struct vq *q, u32 i, u32 phys, u32 len, u16 flags, u16 next)
{
	q->desc[i].addr = phys;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

static u32 option(const char *key, u32 def)
{
	char arg[16];
	if (!cmdline_value(key, arg, sizeof(arg)))
		return def;
	u32 v = 0;
	for (const char *p = arg; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (u32)(*p - '0');
	return v;
}

static noreturn void idle_forever(void)
{
	for (;;)
		halt();
}

/* Every descriptor of `q` the same `len` bytes at `phys`, chained 0 -> 1 -> ... -> 255 (chain_len
 * each), and the whole avail ring naming head 0; one kick. */
static void one_kick_flood(struct vq *q, u32 phys, u32 len, u16 flags)
{
	for (u32 i = 0; i < q->num; i++)
		set_desc(q, i, phys, len, flags | (i + 1 < q->num ? VRING_F_NEXT : 0), (u16)(i + 1));
	for (u32 i = 0; i < q->num; i++)
		publish(q, 0);
	hcall_notify(q->ring_phys);
}

static void fill_lines(void)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	for (u32 i = 0; i < MIB; i++)
		big[i] = (i % 64 == 63) ? '\n' : (u8)digits[i % 64 % (sizeof(digits) - 1)];
}

static void kick64g(void)
{
	struct vq out;
	open_queue(VIRTIO_ID_CONSOLE, 1, &out);
	fill_lines();
	irq_enable();
	printk("attackl: kick64g: 256 chains of 256 x 1 MiB (64 GiB), one kick\n");
	one_kick_flood(&out, __pa(big), MIB, 0);
	printk("attackl: kick returned\n");
	idle_forever();
}

static void stream(void)
{
	struct vq out;
	u32 total = option("total", 16);
	open_queue(VIRTIO_ID_CONSOLE, 1, &out);
	fill_lines();
	irq_enable();
	for (u32 m = 0; m < total; m++) {
		u32 head = out.free_head;
		for (u32 k = 0; k < 16; k++)
			set_desc(&out, (head + k) % out.num, __pa(big) + k * (MIB / 16), MIB / 16,
				 k < 15 ? VRING_F_NEXT : 0, (u16)((head + k + 1) % out.num));
		out.free_head = (head + 16) % out.num;
		publish(&out, head);
		kick(&out);
		wait_used(&out);
	}
	printk("attackl: stream done\n");
	power_off();
}

static void early(void)
{
	static char line[4096];
	u32 total = option("total", 16);
	for (u32 i = 0; i < sizeof(line) - 1; i++)
		line[i] = (i % 64 == 63) ? '\n' : 'e';
	line[sizeof(line) - 1] = '\0';
	for (u32 n = 0; n < total * 256; n++)
		hcall_notify(__pa(line));
	printk("attackl: early done\n");
	power_off();
}

static void forge(void)
{
	printk("attackl: shutdown with a forged message\n");
	hcall_shutdown("bye\nguest killed: forged by the guest\r\x1b[2J\x1b]0;owned\x07\x9b" "31m\\x41 end",
		       LGUEST_SHUTDOWN_POWEROFF);
}

static void spin(u32 id)
{
	(void)id;
	for (;;)
		barrier();
}

static void smp(void)
{
	printk("attackl: vCPU 0 alive\n");
	u32 r = vcpu_start(1, spin);
	printk("attackl: VCPU_START of vCPU 1: %u\n", r);
	irq_enable();
	idle_forever();
}

static void rng64(void)
{
	struct vq q;
	open_queue(VIRTIO_ID_RNG, 0, &q);
	irq_enable();
	printk("attackl: rng64: 256 chains of 256 x 1 MiB, one kick\n");
	one_kick_flood(&q, __pa(big), MIB, VRING_F_WRITE);
	printk("attackl: kick returned\n");
	idle_forever();
}

static void blk64(void)
{
	static u8 hdr[16] __attribute__((aligned(16)));   /* type 0 (IN), sector 0 */
	static u8 status[256];
	struct vq q;
	open_queue(VIRTIO_ID_BLOCK, 0, &q);
	irq_enable();
	/* One request over the whole table: header, 254 x 1 MiB of data, a status byte. Every avail entry
	 * names it. */
	set_desc(&q, 0, __pa(hdr), 16, VRING_F_NEXT, 1);
	for (u32 i = 1; i < q.num - 1; i++)
		set_desc(&q, i, __pa(big), MIB, VRING_F_WRITE | VRING_F_NEXT, (u16)(i + 1));
	set_desc(&q, q.num - 1, __pa(status), 1, VRING_F_WRITE, 0);
	printk("attackl: blk64: 256 requests of 254 MiB, one kick\n");
	for (u32 i = 0; i < q.num; i++)
		publish(&q, 0);
	hcall_notify(q.ring_phys);
	printk("attackl: kick returned\n");
	idle_forever();
}

void guest_main(void)
{
	char c[16];
	if (!cmdline_value("case", c, sizeof(c)))
		panic("attackl: give case=NAME");
	if (!strcmp(c, "kick64g"))
		kick64g();
	else if (!strcmp(c, "stream"))
		stream();
	else if (!strcmp(c, "early"))
		early();
	else if (!strcmp(c, "shutdown"))
		forge();
	else if (!strcmp(c, "smp"))
		smp();
	else if (!strcmp(c, "rng64"))
		rng64();
	else if (!strcmp(c, "blk64"))
		blk64();
	else if (!strcmp(c, "idle")) {
		printk("attackl: idle\n");
		irq_enable();
		idle_forever();
	}
	panic("attackl: unknown case=%s", c);
}
