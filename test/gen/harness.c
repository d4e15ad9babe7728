/*
 * harness.c: the native oracle behind the CPU test vectors (see test/vectors/README.md).
 *
 * A 32-bit Linux program. It maps fixed regions (a low data region usable by 16-bit addressing, a code
 * region, a data region and a stack region), then for each test case read from stdin:
 *   - resets every region (code to 0xCC = int3 so every fall-through or branch target ends the run,
 *     everything else to zero), writes the bytes the case lists,
 *   - loads EAX..EDI, EBP, ESP and EFLAGS and jumps to the case's EIP,
 *   - catches the first signal (SIGTRAP from an int3 = normal end, anything else = exception),
 *   - prints the registers the kernel saved and every byte of the regions that differs from the
 *     initial image.
 *
 * Input, one item per line (numbers in hex):
 *   C eax ebx ecx edx esi edi ebp esp eflags eip   start a case
 *   M addr bytes                                   bytes as a hex string, written at addr
 *   R                                              run the case
 * Output, one line per case:
 *   S sig trapno err cr2 eax ebx ecx edx esi edi ebp esp eflags eip [addr:byte ...]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <asm/ldt.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct region {
    uint32_t base, size;
    uint8_t fill;
    uint8_t *initial; /* copy of the image at the start of the case */
};

/* Keep in sync with REGIONS in generate.ts. */
static struct region regions[] = {
    {0x00001000u, 0x0000f000u, 0x00, NULL}, /* low data: 16-bit addressing forms */
    {0x40000000u, 0x00004000u, 0xcc, NULL}, /* code */
    {0x50000000u, 0x00004000u, 0x00, NULL}, /* data */
    {0x60000000u, 0x00002000u, 0x00, NULL}, /* stack */
};
#define NREGIONS (sizeof regions / sizeof regions[0])

/* The state the assembly stub loads; order fixed by the offsets used below. */
uint32_t in_regs[10]; /* eax ebx ecx edx esi edi ebp esp eflags eip */
uint16_t saved_gs, flat_sel;
static uint32_t scratch_stack[256];
uint32_t scratch_top;

static sigjmp_buf back;
static volatile uint32_t out_regs[14];
static uint8_t altstack[65536];

void run_case(void);
void signal_entry(int, siginfo_t *, void *);

/*
 * run_case: switch to a scratch stack (so the test stack stays untouched), load EFLAGS, then the
 * general registers with plain moves (which keep the flags), ESP last, and jump to EIP through memory.
 * signal_entry: first restore GS (glibc keeps its TLS there and the test ran with a flat GS) and clear
 * AC/NT/TF that a popf under test may have left set, then continue in C.
 */
__asm__(
    ".text\n"
    ".globl run_case\n"
    "run_case:\n"
    "  movl scratch_top, %esp\n"
    "  movw flat_sel, %ax\n"
    "  movw %ax, %gs\n"
    "  movw %ax, %fs\n"
    "  pushl in_regs+32\n"
    "  popfl\n"
    "  movl in_regs+0, %eax\n"
    "  movl in_regs+4, %ebx\n"
    "  movl in_regs+8, %ecx\n"
    "  movl in_regs+12, %edx\n"
    "  movl in_regs+16, %esi\n"
    "  movl in_regs+20, %edi\n"
    "  movl in_regs+24, %ebp\n"
    "  movl in_regs+28, %esp\n"
    "  jmp *in_regs+36\n"
    ".globl signal_entry\n"
    "signal_entry:\n"
    "  movw saved_gs, %gs\n"
    "  pushfl\n"
    "  andl $~0x44100, (%esp)\n"
    "  popfl\n"
    "  jmp signal_c\n");

void signal_c(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    out_regs[0] = sig;
    out_regs[1] = g[REG_TRAPNO];
    out_regs[2] = g[REG_ERR];
    out_regs[3] = uc->uc_mcontext.cr2;
    out_regs[4] = g[REG_EAX];
    out_regs[5] = g[REG_EBX];
    out_regs[6] = g[REG_ECX];
    out_regs[7] = g[REG_EDX];
    out_regs[8] = g[REG_ESI];
    out_regs[9] = g[REG_EDI];
    out_regs[10] = g[REG_EBP];
    out_regs[11] = g[REG_ESP];
    out_regs[12] = g[REG_EFL];
    out_regs[13] = g[REG_EIP];
    (void)si;
    siglongjmp(back, 1);
}

static void die(const char *msg)
{
    perror(msg);
    exit(2);
}

static void setup(void)
{
    for (unsigned i = 0; i < NREGIONS; i++) {
        struct region *r = &regions[i];
        void *p = mmap((void *)(uintptr_t)r->base, r->size, PROT_READ | PROT_WRITE | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == MAP_FAILED || (uintptr_t)p != r->base) {
            fprintf(stderr, "cannot map region %08x+%x%s\n", r->base, r->size,
                    r->base < 0x10000 ? " (is vm.mmap_min_addr above 4096?)" : "");
            die("mmap");
        }
        r->initial = malloc(r->size);
    }
    /* A flat 4 GiB data segment in LDT entry 0, loaded into FS and GS while a case runs. */
    struct user_desc d;
    memset(&d, 0, sizeof d);
    d.entry_number = 0;
    d.base_addr = 0;
    d.limit = 0xfffff;
    d.seg_32bit = 1;
    d.contents = 0;
    d.limit_in_pages = 1;
    d.useable = 1;
    if (syscall(SYS_modify_ldt, 1, &d, sizeof d) != 0) die("modify_ldt");
    flat_sel = (0 << 3) | 4 | 3;
    __asm__ volatile("movw %%gs, %0" : "=r"(saved_gs));
    scratch_top = (uint32_t)(uintptr_t)&scratch_stack[240];

    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) die("sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = signal_entry;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGALRM, SIGSYS};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction");
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int in_regions(uint32_t a)
{
    for (unsigned i = 0; i < NREGIONS; i++)
        if (a - regions[i].base < regions[i].size) return 1;
    return 0;
}

static void reset_regions(void)
{
    for (unsigned i = 0; i < NREGIONS; i++)
        memset((void *)(uintptr_t)regions[i].base, regions[i].fill, regions[i].size);
}

static void run_and_report(void)
{
    for (unsigned i = 0; i < NREGIONS; i++)
        memcpy(regions[i].initial, (void *)(uintptr_t)regions[i].base, regions[i].size);
    memset((void *)out_regs, 0, sizeof out_regs);
    alarm(2);
    if (sigsetjmp(back, 1) == 0) run_case();
    alarm(0);
    printf("S %x %x %x %x", out_regs[0], out_regs[1], out_regs[2], out_regs[3]);
    for (int i = 4; i < 14; i++) printf(" %x", out_regs[i]);
    for (unsigned i = 0; i < NREGIONS; i++) {
        struct region *r = &regions[i];
        const uint8_t *now = (const uint8_t *)(uintptr_t)r->base;
        for (uint32_t off = 0; off < r->size; off++)
            if (now[off] != r->initial[off]) printf(" %x:%x", r->base + off, now[off]);
    }
    putchar('\n');
    fflush(stdout);
}

int main(void)
{
    static char line[1 << 16];
    setup();
    reset_regions();
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'C') {
            reset_regions();
            if (sscanf(line + 1, "%x %x %x %x %x %x %x %x %x %x", &in_regs[0], &in_regs[1], &in_regs[2],
                       &in_regs[3], &in_regs[4], &in_regs[5], &in_regs[6], &in_regs[7], &in_regs[8],
                       &in_regs[9]) != 10) {
                fprintf(stderr, "bad C line: %s", line);
                exit(2);
            }
        } else if (line[0] == 'M') {
            char *p = line + 1;
            uint32_t addr = strtoul(p, &p, 16);
            while (*p == ' ') p++;
            for (; hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2, addr++) {
                if (!in_regions(addr)) {
                    fprintf(stderr, "address %08x outside the mapped regions\n", addr);
                    exit(2);
                }
                *(uint8_t *)(uintptr_t)addr = hexval(p[0]) << 4 | hexval(p[1]);
            }
        } else if (line[0] == 'R') {
            run_and_report();
        }
    }
    return 0;
}
