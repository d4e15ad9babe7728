/*
 * harness.c: the native oracle behind the x87 test vectors (docs/cpu-test-format-x87.md).
 *
 * A 64-bit Linux program (x87 behaves the same in 64-bit mode; this machine's kernel will not run 32-bit
 * programs). It maps a code page at 0x40000000 and two data pages at 0x50000000, all below 4 GiB, so a
 * memory operand written with 32-bit-valid addressing ([ebx], [ebx+disp], [ebx+esi*s+disp], SIB absolute
 * disp32; never RIP-relative, never REX) means the same address in both modes. For each case read from
 * stdin it:
 *   - zeroes the data pages and fills the code page with INT3, writes the bytes the case lists (the
 *     generator puts a RET right after the instruction),
 *   - loads the whole x87 state with FRSTOR (control, status, tag word, pointers, ST(0)..ST(7) as raw
 *     80-bit values), then RAX/RBX/RSI and RFLAGS, and calls the instruction,
 *   - on return, saves RFLAGS and RAX and the x87 state with FNSAVE (non-waiting: an unmasked exception
 *     the instruction left pending is seen in the status word, not raised),
 *   - runs each case until two runs give the same result (a preemption in between can lose the
 *     pointers), and
 *   - a signal (SIGFPE from #MF when the case started with an exception pending, SIGSEGV, SIGILL) ends the
 *     case as an exception.
 *
 * Input, one item per line (numbers in hex):
 *   C eflags eax ebx esi eip                        start a case
 *   F <108 bytes of an FRSTOR image as hex>         the x87 state to load
 *   M addr bytes                                    bytes as a hex string (data pages or the instruction)
 *   R                                               run the case
 * Output, one line per case:
 *   S sig trapno eflags eax <108-byte FNSAVE image as hex> [addr:byte ...]   (changed data bytes)
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CODE_BASE 0x40000000u
#define CODE_SIZE 0x1000u
#define DATA_BASE 0x50000000u
#define DATA_SIZE 0x2000u

uint64_t in_flags, in_rax, in_rbx, in_rsi, out_flags, out_rax, call_target;
uint8_t in_state[108] __attribute__((aligned(16)));
uint8_t out_state[108] __attribute__((aligned(16)));
static uint8_t data_initial[DATA_SIZE];
static sigjmp_buf back;
static volatile int got_sig, got_trap;
static uint8_t altstack[65536];

void run_case(void);
__asm__(
    ".text\n"
    ".globl run_case\n"
    "run_case:\n"
    "  push %rbx\n"
    "  push %rbp\n"
    "  push %r12\n"
    "  frstor in_state(%rip)\n"
    "  mov in_rax(%rip), %rax\n"
    "  mov in_rbx(%rip), %rbx\n"
    "  mov in_rsi(%rip), %rsi\n"
    "  mov call_target(%rip), %r11\n"
    "  pushq in_flags(%rip)\n"
    "  popfq\n"
    "  call *%r11\n"
    "  pushfq\n"
    "  popq out_flags(%rip)\n"
    "  cld\n"
    "  mov %rax, out_rax(%rip)\n"
    "  fnsave out_state(%rip)\n"
    "  pop %r12\n"
    "  pop %rbp\n"
    "  pop %rbx\n"
    "  ret\n");

static void on_signal(int sig, siginfo_t *si, void *ctx) {
    (void)si;
    ucontext_t *uc = ctx;
    got_sig = sig;
    got_trap = (int)uc->uc_mcontext.gregs[REG_TRAPNO];
    siglongjmp(back, 1);
}

static void *map_at(uint32_t base, uint32_t size, int prot) {
    void *p = mmap((void *)(uintptr_t)base, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)base) {
        fprintf(stderr, "harness: cannot map 0x%x\n", base);
        exit(1);
    }
    return p;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t parse_hex_bytes(const char *s, uint8_t *out, size_t max) {
    size_t n = 0;
    while (s[0] && s[1] && n < max && hexval(s[0]) >= 0 && hexval(s[1]) >= 0) {
        out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    return n;
}

int main(void) {
    uint8_t *code = map_at(CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
    uint8_t *data = map_at(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGTRAP, &sa, NULL);
    static char line[1 << 16];
    uint32_t eip = CODE_BASE;
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'C') {
            unsigned long long fl, a, b, si, e;
            if (sscanf(line + 1, "%llx %llx %llx %llx %llx", &fl, &a, &b, &si, &e) != 5) return 2;
            in_flags = fl; in_rax = a; in_rbx = b; in_rsi = si; eip = (uint32_t)e;
            memset(code, 0xcc, CODE_SIZE);
            memset(data, 0, DATA_SIZE);
        } else if (line[0] == 'F') {
            if (parse_hex_bytes(line + 2, in_state, 108) != 108) return 3;
        } else if (line[0] == 'M') {
            unsigned long long addr;
            int off;
            if (sscanf(line + 1, "%llx %n", &addr, &off) != 1) return 4;
            uint8_t buf[4096];
            size_t n = parse_hex_bytes(line + 1 + off, buf, sizeof buf);
            for (size_t i = 0; i < n; i++) {
                uint32_t x = (uint32_t)addr + (uint32_t)i;
                if (x >= DATA_BASE && x < DATA_BASE + DATA_SIZE) data[x - DATA_BASE] = buf[i];
                else if (x >= CODE_BASE && x < CODE_BASE + CODE_SIZE - 1) code[x - CODE_BASE] = buf[i];
                else return 5;
            }
        } else if (line[0] == 'R') {
            /* A preemption between FRSTOR and FNSAVE can lose FIP/FDP/FOP (the kernel's XSAVE on AMD
             * keeps them only with an exception pending), so each case runs until two runs agree. */
            static char prev[8192], cur[8192];
            memcpy(data_initial, data, DATA_SIZE);
            prev[0] = 0;
            for (volatile int attempt = 0; attempt < 8; attempt++) {
                memcpy(data, data_initial, DATA_SIZE);
                call_target = eip;
                got_sig = 0;
                got_trap = -1;
                if (sigsetjmp(back, 1) == 0) run_case();
                if (got_sig) memset(out_state, 0, sizeof out_state);
                int n = snprintf(cur, sizeof cur, "S %d %d %llx %llx ", got_sig, got_trap,
                                 (unsigned long long)out_flags, (unsigned long long)out_rax);
                for (int i = 0; i < 108; i++) n += snprintf(cur + n, sizeof cur - n, "%02x", out_state[i]);
                for (uint32_t i = 0; i < DATA_SIZE && n < (int)sizeof cur - 32; i++) {
                    if (data[i] != data_initial[i]) n += snprintf(cur + n, sizeof cur - n, " %x:%02x", DATA_BASE + i, data[i]);
                }
                if (strcmp(cur, prev) == 0) break;
                memcpy(prev, cur, sizeof cur);
            }
            printf("%s\n", cur);
            fflush(stdout);
        }
    }
    return 0;
}
