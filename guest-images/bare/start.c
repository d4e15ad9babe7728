/* start.c: what the runtime does before kmain (bare_init), the multiboot info and command line, and
 * leaving through isa-debug-exit. */
#include "bare.h"

static const struct multiboot_info *boot_info;
static const char *boot_cmdline = "";

void bare_init(uint32_t magic, const struct multiboot_info *mbi)
{
    char which[8];

    if (magic == MULTIBOOT_BOOTLOADER_MAGIC && mbi) {
        boot_info = mbi;
        if ((mbi->flags & MULTIBOOT_INFO_CMDLINE) && mbi->cmdline)
            boot_cmdline = (const char *)(uintptr_t)mbi->cmdline;
    }

    /* console=e9 (the default), console=com1 or console=both */
    if (bare_option("console", which, sizeof which)) {
        if (strcmp(which, "com1") == 0)
            bare_console = CONSOLE_COM1;
        else if (strcmp(which, "both") == 0)
            bare_console = CONSOLE_E9 | CONSOLE_COM1;
        else
            bare_console = CONSOLE_E9;
    }
}

const struct multiboot_info *bare_mbi(void) { return boot_info; }
const char *bare_cmdline(void) { return boot_cmdline; }

uint32_t bare_mem_kib(void)
{
    if (!boot_info || !(boot_info->flags & MULTIBOOT_INFO_MEMORY))
        return 0;
    return boot_info->mem_lower + boot_info->mem_upper;
}

/* Walk the words of the command line; a word NAME or NAME=VALUE matches name. */
int bare_option(const char *name, char *buf, size_t size)
{
    const char *p = boot_cmdline;
    size_t len = strlen(name);

    while (*p) {
        const char *word;
        while (*p == ' ')
            p++;
        word = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - word) >= len && strncmp(word, name, len) == 0 &&
            (word + len == p || word[len] == '=')) {
            const char *v = word + len + (word + len == p ? 0 : 1);
            size_t n = 0;
            while (v < p && n + 1 < size)
                buf[n++] = *v++;
            if (size)
                buf[n] = '\0';
            return 1;
        }
    }
    return 0;
}

uint32_t bare_option_u32(const char *name, uint32_t fallback)
{
    char buf[16];
    const char *p = buf;
    uint32_t v = 0, base = 10;

    if (!bare_option(name, buf, sizeof buf) || !*p)
        return fallback;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
        if (!*p)
            return fallback;
    }
    for (; *p; p++) {
        uint32_t d;
        if (*p >= '0' && *p <= '9')
            d = (uint32_t)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (uint32_t)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (uint32_t)(*p - 'A' + 10);
        else
            return fallback;
        v = v * base + d;
    }
    return v;
}

void exit_qemu(uint32_t code)
{
    outl(PORT_DEBUG_EXIT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}
