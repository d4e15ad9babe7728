/*
 * paging: the page walk and its faults (SDM Vol. 3A chapter 4 "Paging": 4.3 "32-Bit Paging",
 * 4.4 "PAE Paging", 4.6 "Access Rights", 4.7 "Page-Fault Exceptions", 4.8 "Accessed and Dirty
 * Flags", 4.10.4 "Invalidation of TLBs and Paging-Structure Caches"). 4 KiB pages, 4 MiB pages
 * (CR4.PSE), PAE with 2 MiB pages, CR0.WP, U/S and R/W from ring 3, A/D bits, global pages,
 * #PF error codes (P, W/R, U/S, RSVD) with CR2, and a fetch across into a not-present page.
 */
#include "lib.h"

#define PTE_P   0x001u
#define PTE_RW  0x002u
#define PTE_US  0x004u
#define PTE_A   0x020u
#define PTE_D   0x040u
#define PTE_PS  0x080u
#define PTE_G   0x100u
#define PF_P    0x1u
#define PF_W    0x2u
#define PF_U    0x4u
#define PF_RSVD 0x8u
#define PAGE    4096u

#define TEST_BASE 0x00800000u          /* linear: PDE 2 -> pt_test */
#define BIG_BASE  0x00C00000u          /* linear: PDE 3, a 4 MiB (or PAE 2 MiB) page */
#define BIG_PHYS  0x00400000u
#define RSVD_BASE 0x01000000u          /* linear: PDE 4, a 4 MiB page with a reserved bit */
#define LIN(i)    (TEST_BASE + (i) * PAGE)
enum { P_CODE = 0, P_CODE2, P_RO_USER, P_SUPER, P_GLOBAL, P_NONGLOBAL, P_AD, P_ABSENT, P_RW_USER, P_RSVD };
enum { F_CODE = 0, F_CODE2, F_RO, F_SUPER, F_A, F_B, F_AD, F_RW, F_COUNT };

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt_low[2][1024] __attribute__((aligned(4096)));
static u32 pt_test[1024] __attribute__((aligned(4096)));
static u8 frames[F_COUNT][PAGE] __attribute__((aligned(4096)));
static u64 pdpt[4] __attribute__((aligned(32)));
static u64 pae_pd[512] __attribute__((aligned(4096)));
static u64 pae_pt[512] __attribute__((aligned(4096)));
#define FRAME(f) ((u32)frames[f])

volatile u32 probe_addr, probe_val;
static void t_read(void *a) { __asm__ volatile(AT_FAULT("movl (%1), %0") : "=r"(probe_val) : "r"(probe_addr) : "memory"); }
static void t_write(void *a) { __asm__ volatile(AT_FAULT("movl $0x600DF00D, (%0)") :: "r"(probe_addr) : "memory"); }
static u32 u_read(void) { u32 v; __asm__ volatile(AT_FAULT("movl (%1), %0") : "=r"(v) : "r"(probe_addr) : "memory"); probe_val = v; return v; }
static u32 u_write(void) { __asm__ volatile(AT_FAULT("movl $0x600DF00D, (%0)") :: "r"(probe_addr) : "memory"); return 0; }
static void t_mov_cr3(void *a) { __asm__ volatile(AT_FAULT("mov %0, %%cr3") :: "r"((u32)a) : "memory"); }

static int paging_pae;
static void set_pte(int i, u32 phys, u32 flags) {
    if (paging_pae) pae_pt[i] = phys | flags; else pt_test[i] = phys | flags;
    invlpg(LIN(i));
}

/* One access: ring 0 or 3, read or write, at addr; the check wants vector (or none) + err. */
static void probe(const char *desc, int ring, int write, u32 addr, int want_vec, u32 want_err) {
    int v;
    probe_addr = addr;
    if (ring == 0) v = try_call(write ? t_write : t_read, 0);
    else v = run_ring(3, write ? u_write : u_read, 0);
    if (want_vec == V_PF)
        expect(desc, v, V_PF, want_err, fault_eip, addr, SHOW_ERR | SHOW_EIP | SHOW_CR2);
    else
        expect(desc, v, want_vec, 0, 0, 0, 0);
}

static void common_pages(const char *mode) {
    char d[128];
#define D(s) (ksprintf(d, "%s: %s", mode, s), d)
    u32 pde_test = paging_pae ? (u32)pae_pd[4] : pd[2];
    (void)pde_test;
    /* U/S and R/W from ring 3 and ring 0, and CR0.WP. */
    set_pte(P_RO_USER, FRAME(F_RO), PTE_P | PTE_US);
    set_pte(P_SUPER, FRAME(F_SUPER), PTE_P | PTE_RW);
    set_pte(P_RW_USER, FRAME(F_RW), PTE_P | PTE_RW | PTE_US);
    set_pte(P_ABSENT, FRAME(F_RW), PTE_RW | PTE_US);
    probe(D("ring 3 read of a read-only user page"), 3, 0, LIN(P_RO_USER) + 8, NO_TRAP, 0);
    probe(D("ring 3 write to a read-only user page"), 3, 1, LIN(P_RO_USER) + 8, V_PF, PF_P | PF_W | PF_U);
    probe(D("ring 3 read of a supervisor page"), 3, 0, LIN(P_SUPER) + 0x10, V_PF, PF_P | PF_U);
    probe(D("ring 3 write to a supervisor page"), 3, 1, LIN(P_SUPER) + 0x10, V_PF, PF_P | PF_W | PF_U);
    probe(D("ring 3 write to a writable user page"), 3, 1, LIN(P_RW_USER), NO_TRAP, 0);
    probe(D("ring 0 read of a not-present page"), 0, 0, LIN(P_ABSENT) + 0xFFC, V_PF, 0);
    probe(D("ring 0 write to a not-present page"), 0, 1, LIN(P_ABSENT) + 4, V_PF, PF_W);
    probe(D("ring 3 read of a not-present page"), 3, 0, LIN(P_ABSENT), V_PF, PF_U);
    probe(D("ring 3 write to a not-present page"), 3, 1, LIN(P_ABSENT), V_PF, PF_W | PF_U);
    write_cr0(read_cr0() & ~CR0_WP);
    probe(D("CR0.WP=0: ring 0 write to a read-only user page"), 0, 1, LIN(P_RO_USER), NO_TRAP, 0);
    set_pte(P_SUPER, FRAME(F_SUPER), PTE_P);
    probe(D("CR0.WP=0: ring 0 write to a read-only supervisor page"), 0, 1, LIN(P_SUPER), NO_TRAP, 0);
    write_cr0(read_cr0() | CR0_WP);
    probe(D("CR0.WP=1: ring 0 write to a read-only supervisor page"), 0, 1, LIN(P_SUPER), V_PF, PF_P | PF_W);
    probe(D("CR0.WP=1: ring 0 write to a read-only user page"), 0, 1, LIN(P_RO_USER), V_PF, PF_P | PF_W);
    /* The directory entry's U/S and R/W combine with the table entry's (the stricter wins). */
    if (paging_pae) pae_pd[4] &= ~(u64)PTE_US; else pd[2] &= ~PTE_US;
    write_cr3(read_cr3());
    probe(D("PDE U/S=0, PTE U/S=1: ring 3 read"), 3, 0, LIN(P_RW_USER), V_PF, PF_P | PF_U);
    if (paging_pae) pae_pd[4] |= PTE_US; else pd[2] |= PTE_US;
    if (paging_pae) pae_pd[4] &= ~(u64)PTE_RW; else pd[2] &= ~PTE_RW;
    write_cr3(read_cr3());
    probe(D("PDE R/W=0, PTE R/W=1: ring 3 write"), 3, 1, LIN(P_RW_USER), V_PF, PF_P | PF_W | PF_U);
    probe(D("PDE R/W=0, PTE R/W=1: ring 0 write with WP=1"), 0, 1, LIN(P_RW_USER), V_PF, PF_P | PF_W);
    probe(D("PDE R/W=0, PTE R/W=1: ring 3 read"), 3, 0, LIN(P_RW_USER), NO_TRAP, 0);
    if (paging_pae) pae_pd[4] |= PTE_RW; else pd[2] |= PTE_RW;
    write_cr3(read_cr3());

    /* Accessed and dirty flags written by the walk. */
    set_pte(P_AD, FRAME(F_AD), PTE_P | PTE_RW | PTE_US);
    if (paging_pae) pae_pd[4] &= ~(u64)PTE_A; else pd[2] &= ~PTE_A;
    write_cr3(read_cr3());
#define PTE_OF(i) (paging_pae ? (u32)pae_pt[i] : pt_test[i])
#define PDE_TEST() (paging_pae ? (u32)pae_pd[4] : pd[2])
    probe(D("read for A/D"), 0, 0, LIN(P_AD), NO_TRAP, 0);
    check3(D("after a read: PTE A=1 D=0, PDE A=1"), "pte.a=%u pte.d=%u pde.a=%u", !!(PTE_OF(P_AD) & PTE_A), !!(PTE_OF(P_AD) & PTE_D),
           !!(PDE_TEST() & PTE_A), 1, 0, 1);
    probe(D("write for A/D"), 3, 1, LIN(P_AD), NO_TRAP, 0);
    check3(D("after a write: PTE A=1 D=1"), "pte.a=%u pte.d=%u%s", !!(PTE_OF(P_AD) & PTE_A), !!(PTE_OF(P_AD) & PTE_D), (u32)"", 1, 1, (u32)"");
    set_pte(P_RO_USER, FRAME(F_RO), PTE_P | PTE_US | PTE_A);
    probe(D("write to a read-only page for D"), 3, 1, LIN(P_RO_USER), V_PF, PF_P | PF_W | PF_U);
    check3(D("a faulting write leaves D=0"), "pte.d=%u%s%s", !!(PTE_OF(P_RO_USER) & PTE_D), (u32)"", (u32)"", 0, (u32)"", (u32)"");

    /* Global pages: kept across a CR3 reload when CR4.PGE=1, dropped by invlpg. */
    *(u32 *)FRAME(F_A) = 0xAAAA0001; *(u32 *)FRAME(F_B) = 0xBBBB0002;
    write_cr4(read_cr4() | CR4_PGE);
    set_pte(P_GLOBAL, FRAME(F_A), PTE_P | PTE_RW | PTE_G);
    set_pte(P_NONGLOBAL, FRAME(F_A), PTE_P | PTE_RW);
    u32 g0 = *(volatile u32 *)LIN(P_GLOBAL), n0 = *(volatile u32 *)LIN(P_NONGLOBAL);
    if (paging_pae) { pae_pt[P_GLOBAL] = FRAME(F_B) | PTE_P | PTE_RW | PTE_G; pae_pt[P_NONGLOBAL] = FRAME(F_B) | PTE_P | PTE_RW; }
    else { pt_test[P_GLOBAL] = FRAME(F_B) | PTE_P | PTE_RW | PTE_G; pt_test[P_NONGLOBAL] = FRAME(F_B) | PTE_P | PTE_RW; }
    write_cr3(read_cr3());
    u32 g1 = *(volatile u32 *)LIN(P_GLOBAL), n1 = *(volatile u32 *)LIN(P_NONGLOBAL);
    invlpg(LIN(P_GLOBAL));
    u32 g2 = *(volatile u32 *)LIN(P_GLOBAL);
    check3(D("global page before remap / after CR3 reload / after invlpg"), "0x%x 0x%x 0x%x", g0, g1, g2, 0xAAAA0001, 0xAAAA0001, 0xBBBB0002);
    check3(D("non-global page before remap / after CR3 reload"), "0x%x 0x%x%s", n0, n1, (u32)"", 0xAAAA0001, 0xBBBB0002, (u32)"");
    if (paging_pae) pae_pt[P_GLOBAL] = FRAME(F_A) | PTE_P | PTE_RW | PTE_G; else pt_test[P_GLOBAL] = FRAME(F_A) | PTE_P | PTE_RW | PTE_G;
    write_cr4(read_cr4() & ~CR4_PGE);           /* clearing PGE flushes global entries too */
    write_cr4(read_cr4() | CR4_PGE);
    check3(D("global page after CR4.PGE toggle"), "0x%x%s%s", *(volatile u32 *)LIN(P_GLOBAL), (u32)"", (u32)"", 0xAAAA0001, (u32)"", (u32)"");
    write_cr4(read_cr4() & ~CR4_PGE);

    /* Instruction fetch running off a present page into a not-present one. */
    u8 *code = (u8 *)FRAME(F_CODE) + PAGE - 2;
    code[0] = 0xB8; code[1] = 0x78; frames[F_CODE2][0] = 0x56; frames[F_CODE2][1] = 0x34; frames[F_CODE2][2] = 0x12;
    frames[F_CODE2][3] = 0xC3;                  /* mov $0x12345678, %eax; ret */
    set_pte(P_CODE, FRAME(F_CODE), PTE_P | PTE_RW);
    set_pte(P_CODE2, FRAME(F_CODE2), PTE_RW);
    int v = try_call((void (*)(void *))(LIN(P_CODE) + PAGE - 2), 0);
    expect(D("fetch of mov imm32 crossing into a not-present page"), v, V_PF, 0, LIN(P_CODE) + PAGE - 2, LIN(P_CODE2),
           SHOW_ERR | SHOW_EIP | SHOW_CR2);
    set_pte(P_CODE2, FRAME(F_CODE2), PTE_P | PTE_RW);
    v = try_call((void (*)(void *))(LIN(P_CODE) + PAGE - 2), 0);
    expect(D("the same instruction with both pages present"), v, NO_TRAP, 0, 0, 0, 0);
    set_pte(P_CODE2, FRAME(F_CODE2), PTE_RW);
    v = try_call((void (*)(void *))(LIN(P_CODE2) + 3), 0);
    expect(D("call into a not-present page"), v, V_PF, 0, LIN(P_CODE2) + 3, LIN(P_CODE2) + 3, SHOW_ERR | SHOW_EIP | SHOW_CR2);
#undef D
}

int kmain(void) {
    char g[128], w[128];
    /* 32-bit paging: 0-8 MiB identity (user, writable), PDE 2 -> pt_test, PDE 3 a 4 MiB page. */
    for (u32 i = 0; i < 2048; i++) pt_low[i / 1024][i % 1024] = i * PAGE | PTE_P | PTE_RW | PTE_US;
    pd[0] = (u32)pt_low[0] | PTE_P | PTE_RW | PTE_US;
    pd[1] = (u32)pt_low[1] | PTE_P | PTE_RW | PTE_US;
    pd[2] = (u32)pt_test | PTE_P | PTE_RW | PTE_US;
    pd[3] = BIG_PHYS | PTE_PS | PTE_P | PTE_RW | PTE_US;
    pd[4] = BIG_PHYS | 0x00200000 | PTE_PS | PTE_P | PTE_RW;   /* bit 21: reserved in a 4 MiB PDE */
    *(volatile u32 *)(BIG_PHYS + 0x10) = 0x4B1D4B1D;
    write_cr3((u32)pd);
    write_cr4(read_cr4() | CR4_PSE);
    write_cr0(read_cr0() | CR0_PG | CR0_WP);
    common_pages("32-bit");
    probe_addr = BIG_BASE + 0x10;
    int v = try_call(t_read, 0);
    check3("32-bit: 4 MiB page (CR4.PSE) read", "result=%d value=0x%x pde.a=%u", v, probe_val, !!(pd[3] & PTE_A), -1, 0x4B1D4B1D, 1);
    probe("32-bit: 4 MiB page write", 3, 1, BIG_BASE + 0x20, NO_TRAP, 0);
    check3("32-bit: 4 MiB page D set in the PDE", "pde.d=%u%s%s", !!(pd[3] & PTE_D), (u32)"", (u32)"", 1, (u32)"", (u32)"");
    probe("32-bit: 4 MiB PDE with reserved bit 21 set", 0, 0, RSVD_BASE + 0x44, V_PF, PF_P | PF_RSVD);
    /* #DF: a #NP while delivering a #PF (the #PF gate not present). */
    idt[V_PF].type_attr &= 0x7F;
    probe_addr = LIN(P_ABSENT);
    v = try_call(t_read, 0);
    idt[V_PF].type_attr |= 0x80;
    expect("32-bit: #DF from #NP while delivering #PF", v, V_DF, 0, 0, 0, SHOW_ERR);
    write_cr0(read_cr0() & ~CR0_PG);

    /* PAE paging: PDPTE 0 -> pae_pd; 0-8 MiB as 2 MiB pages, PDE 4 -> pae_pt (0x00800000),
       PDE 6 a 2 MiB page at 0x00C00000, PDE 8 a 2 MiB page with a reserved bit. */
    paging_pae = 1;
    for (int i = 0; i < 4; i++) pae_pd[i] = (u64)(i * 0x200000u) | PTE_PS | PTE_P | PTE_RW | PTE_US;
    pae_pd[4] = (u32)pae_pt | PTE_P | PTE_RW | PTE_US;
    pae_pd[6] = BIG_PHYS | PTE_PS | PTE_P | PTE_RW | PTE_US;
    pae_pd[8] = BIG_PHYS | (1ull << 50) | PTE_PS | PTE_P | PTE_RW;
    pdpt[0] = (u32)pae_pd | PTE_P;
    write_cr3((u32)pdpt);
    write_cr4(read_cr4() | CR4_PAE);
    write_cr0(read_cr0() | CR0_PG);
    common_pages("PAE");
    probe_addr = BIG_BASE + 0x10;
    v = try_call(t_read, 0);
    check3("PAE: 2 MiB page read", "result=%d value=0x%x pde.a=%u", v, probe_val, !!(pae_pd[6] & PTE_A), -1, 0x4B1D4B1D, 1);
    probe("PAE: 2 MiB page write", 3, 1, BIG_BASE + 0x20, NO_TRAP, 0);
    check3("PAE: 2 MiB page D set in the PDE", "pde.d=%u%s%s", !!(pae_pd[6] & PTE_D), (u32)"", (u32)"", 1, (u32)"", (u32)"");
    probe("PAE: 2 MiB PDE with reserved bit 50 set", 0, 0, 0x01000000 + 0x44, V_PF, PF_P | PF_RSVD);
    set_pte(P_RSVD, FRAME(F_RW), PTE_P | PTE_RW | PTE_US);
    pae_pt[P_RSVD] |= 1ull << 50;
    invlpg(LIN(P_RSVD));
    probe("PAE: PTE with reserved bit 50 set, ring 3 write", 3, 1, LIN(P_RSVD) + 8, V_PF, PF_P | PF_W | PF_U | PF_RSVD);
    probe("PAE: not-present PDPTE 1", 0, 0, 0x40000000, V_PF, 0);
    pdpt[1] = (u32)pae_pd | PTE_P | PTE_RW;       /* bit 1 is reserved in a PAE PDPTE */
    v = try_call(t_mov_cr3, (void *)pdpt);
    pdpt[1] = 0;
    write_cr3((u32)pdpt);
    expect("PAE: mov cr3 with a reserved bit in a PDPTE", v, V_GP, 0, fault_eip, 0, SHOW_ERR | SHOW_EIP);
    ksprintf(g, "cr0.pg=%u cr4.pae=%u", !!(read_cr0() & CR0_PG), !!(read_cr4() & CR4_PAE));
    ksprintf(w, "cr0.pg=%u cr4.pae=%u", 1, 1);
    check("PAE: still paging", g, w);
    return 0;
}
