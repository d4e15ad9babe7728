/* virtcon: a minimal driver for the Launcher's virtio console (abi 7.1-7.4). Finds the console on the
 * device descriptor page, maps its two rings (the Launcher placed them above RAM), sets the status
 * ACKNOWLEDGE|DRIVER|DRIVER_OK, puts strings on the output queue (single buffers, a three-descriptor
 * chain, a batch behind one kick), kicks with NOTIFY(ring address), waits for the used ring by HALTing
 * until the queue's interrupt, and prints its summary through the device.
 *
 * Command line:
 *   input=N    also offer buffers on the input queue and wait for N bytes of console input, then print
 *              them through the output queue
 *   bad=CASE   give the Host one malformed output chain, which must kill us: loop (a chain that links
 *              back to itself), beyond (a buffer past the end of memory), head (a head index >= num),
 *              avail (avail->idx far ahead of the Host), order (readable after writable), indirect
 *
 * The checks print through the early console ("check: ...: ok"); the device's own lines start with
 * "virtcon:" and end with "virtcon: done". */
#include "virtio.h"

static volatile u8 *desc_page;
static volatile u8 *con_desc;       /* the console's record */
static u32 desc_page_phys;
static struct vq vqs[2];            /* 0 input, 1 output */
static volatile u32 irq_count[2];
static u32 checks;

#define OUT (&vqs[1])
#define IN  (&vqs[0])

static void vq_interrupt(struct trap_frame *f)
{
	u32 irq = f->vector - FIRST_EXTERNAL_VECTOR;
	for (u32 i = 0; i < 2; i++)
		if (vqs[i].irq == irq)
			irq_count[i]++;
}

static void ok(int cond, const char *what)
{
	check(cond, "%s", what);
	checks++;
}

static void set_status(u8 s)
{
	con_desc[4] = s;
	barrier();
	hcall_notify(desc_page_phys + (u32)(con_desc - desc_page));
}

/* Find the console: the first record of type 3. Returns 0 if there is none. */
static int find_console(void)
{
	desc_page_phys = (u32)boot_mem_size;
	virtio_map_phys(desc_page_phys, 1);
	desc_page = (volatile u8 *)__va(desc_page_phys);
	u32 off = 0;
	while (off + LGUEST_DEVICE_DESC_SIZE <= PAGE_SIZE && desc_page[off]) {
		volatile u8 *d = desc_page + off;
		if (d[0] == VIRTIO_ID_CONSOLE) {
			con_desc = d;
			return off == 0;
		}
		off += virtio_record_size(d);
	}
	return 0;
}

static void setup_vq(u32 i)
{
	struct lguest_vqconfig cfg;
	memcpy(&cfg, (const void *)(con_desc + LGUEST_DEVICE_DESC_SIZE + i * LGUEST_VQCONFIG_SIZE), sizeof(cfg));
	vq_setup(&vqs[i], &cfg, vq_interrupt);
}

static void set_desc(struct vq *q, u32 i, u32 phys, u32 len, u16 flags, u16 next)
{
	q->desc[i].addr = phys;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

static u32 alloc_desc(struct vq *q, u32 n)
{
	u32 head = q->free_head;
	q->free_head = (q->free_head + n) % q->num;
	return head;
}

/* Buffers for the output queue: one per descriptor slot, so nothing is reused before it was used. */
#define OUT_BUF 128
static char out_bufs[256][OUT_BUF];

static u32 put_string(const char *s)
{
	u32 len = strlen(s);
	if (len > OUT_BUF)
		len = OUT_BUF;
	u32 head = alloc_desc(OUT, 1);
	memcpy(out_bufs[head], s, len);
	set_desc(OUT, head, __pa(out_bufs[head]), len, 0, 0);
	publish(OUT, head);
	return head;
}

static void vprint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vprint(const char *fmt, ...)
{
	char line[OUT_BUF];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	put_string(line);
	kick(OUT);
	wait_used(OUT);
}

static void test_input(u32 want)
{
	static char in_bufs[4][64];
	char got[257];
	u32 n = 0;
	for (u32 i = 0; i < 4; i++) {
		set_desc(IN, i, __pa(in_bufs[i]), sizeof(in_bufs[i]), VRING_F_WRITE, 0);
		publish(IN, i);
	}
	kick(IN);
	if (want > sizeof(got) - 1)
		want = sizeof(got) - 1;
	irq_disable();
	while (n < want) {
		while (IN->last_used == used_idx(IN)) {
			halt();
			irq_disable();
		}
		volatile struct vring_used_elem *e = used_elem(IN, IN->last_used++);
		u32 id = e->id, len = e->len;
		check(id < 4 && len <= sizeof(in_bufs[0]), "input used entry %u, len %u, is one of our buffers", id, len);
		for (u32 k = 0; k < len && n < want; k++)
			got[n++] = in_bufs[id][k];
		publish(IN, id);       /* give the buffer back */
		kick(IN);
	}
	irq_enable();
	got[n] = '\0';
	for (u32 k = 0; k < n; k++)
		if (got[k] == '\n')
			got[k] = '|';
	ok(irq_count[0] > 0, "input queue interrupt (IRQ 1) arrived");
	vprint("virtcon: input %u bytes: %s\n", n, got);
}

static void misbehave(const char *c)
{
	static char buf[16] = "bad\n";
	struct vq *q = OUT;
	u32 h = alloc_desc(q, 2);
	vprint("virtcon: giving the Host a bad output ring: %s\n", c);
	h = alloc_desc(q, 2);
	if (!strcmp(c, "loop")) {
		set_desc(q, h, __pa(buf), 4, VRING_F_NEXT, h + 1);
		set_desc(q, h + 1, __pa(buf), 4, VRING_F_NEXT, h);
	} else if (!strcmp(c, "beyond")) {
		set_desc(q, h, (u32)boot_mem_size + 64 * PAGE_SIZE, 4, 0, 0);
	} else if (!strcmp(c, "head")) {
		h = q->num + 7;
	} else if (!strcmp(c, "avail")) {
		q->next_avail += q->num;
		set_desc(q, h, __pa(buf), 4, 0, 0);
	} else if (!strcmp(c, "order")) {
		set_desc(q, h, __pa(buf), 4, VRING_F_WRITE | VRING_F_NEXT, h + 1);
		set_desc(q, h + 1, __pa(buf), 4, 0, 0);
	} else if (!strcmp(c, "indirect")) {
		set_desc(q, h, __pa(buf), 16, VRING_F_INDIRECT, 0);
	} else {
		panic("virtcon: unknown bad=%s", c);
	}
	publish(q, h);
	hcall_notify(q->ring_phys);
	panic("virtcon: the Host accepted bad=%s", c);
}

void guest_main(void)
{
	char arg[16];
	printk("virtcon: looking for the virtio console\n");
	ok(find_console(), "the console is the first record on the descriptor page");
	ok(con_desc[1] == 2 && con_desc[2] == 0 && con_desc[3] == 0, "2 virtqueues, no features, no config");
	setup_vq(0);
	setup_vq(1);
	check(IN->num == 256 && OUT->num == 256, "queues of %u and %u entries", IN->num, OUT->num);
	checks++;
	check(IN->irq == 1 && OUT->irq == 2, "input on IRQ %u, output on IRQ %u", IN->irq, OUT->irq);
	checks++;
	ok(IN->ring_phys >= boot_mem_size + PAGE_SIZE && OUT->ring_phys >= IN->ring_phys + 3 * PAGE_SIZE,
	   "rings above RAM, after the descriptor page, 3 pages each");
	ok(used_idx(OUT) == 0 && OUT->avail[1] == 0, "rings start empty");

	set_status(VIRTIO_ACKNOWLEDGE);
	set_status(VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER);
	set_status(VIRTIO_ACKNOWLEDGE | VIRTIO_DRIVER | VIRTIO_DRIVER_OK);
	ok(con_desc[4] == 7, "status ACKNOWLEDGE|DRIVER|DRIVER_OK");
	irq_enable();

	/* One buffer. */
	u32 head = put_string("virtcon: hello through the virtio console\n");
	kick(OUT);
	wait_used(OUT);
	volatile struct vring_used_elem *e = used_elem(OUT, OUT->last_used++);
	ok(e->id == head && e->len == 0, "used entry names our chain, 0 bytes written");
	ok(irq_count[1] == 1, "one output interrupt (IRQ 2)");

	/* A chain of three descriptors: one line. */
	static char parts[3][16] = { "virtcon: chain ", "of three ", "descriptors\n" };
	head = alloc_desc(OUT, 3);
	for (u32 i = 0; i < 3; i++)
		set_desc(OUT, head + i, __pa(parts[i]), strlen(parts[i]), i < 2 ? VRING_F_NEXT : 0, head + i + 1);
	publish(OUT, head);
	kick(OUT);
	wait_used(OUT);
	OUT->last_used++;
	ok(irq_count[1] == 2, "the chain came back with one interrupt");

	/* A batch of 20 behind one kick, and the ring wrapping past 256 descriptors. */
	char line[64];
	for (u32 i = 0; i < 20; i++) {
		snprintf(line, sizeof(line), "virtcon: batch %u\n", i);
		put_string(line);
	}
	kick(OUT);
	wait_used(OUT);
	ok(irq_count[1] == 3, "20 buffers, one kick, one interrupt");
	u32 in_order = 1;
	for (u32 i = 0; i < 20; i++, OUT->last_used++)
		in_order &= used_elem(OUT, OUT->last_used)->id == (head + 3 + i) % OUT->num;
	ok(in_order, "used in the order given");
	for (u32 i = 0; i < 300; i++) {
		put_string("");
		kick(OUT);
	}
	wait_used(OUT);
	OUT->last_used = used_idx(OUT);
	ok(used_idx(OUT) == OUT->next_avail, "300 more (empty) buffers: indices wrap around the ring");

	/* No interrupt when we ask for none. */
	u32 before = irq_count[1];
	OUT->avail[0] = VRING_AVAIL_NO_INTERRUPT;
	put_string("virtcon: this one without an interrupt\n");
	kick(OUT);
	while (used_idx(OUT) != OUT->next_avail)
		;
	OUT->last_used++;
	ok(irq_count[1] == before, "VRING_AVAIL_F_NO_INTERRUPT suppresses the interrupt");
	OUT->avail[0] = 0;

	if (cmdline_value("input", arg, sizeof(arg))) {
		u32 want = 0;
		for (const char *p = arg; *p >= '0' && *p <= '9'; p++)
			want = want * 10 + (u32)(*p - '0');
		test_input(want);
	}
	if (cmdline_value("bad", arg, sizeof(arg)))
		misbehave(arg);
	vprint("virtcon: summary: %u checks passed, %u output interrupts\n", checks, irq_count[1]);
	vprint("virtcon: done\n");
	irq_disable();
	power_off();
}
