/* usermode_blob.S: the flat binary of a ring-3 program (USER_BIN: usermode_user, bench-switch_user; built
 * by lguest.mk) inside the kernel image. */
	.section .rodata
	.p2align 4
	.globl user_image, user_image_end
user_image:
	.incbin USER_BIN
user_image_end:
