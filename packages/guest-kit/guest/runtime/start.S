/*
 * Common 64-bit start. Each CPU finds its local APIC ID, takes its own stack, and the bootstrap CPU (APIC ID 0)
 * clears .bss, runs runtime_init and main, and exits with main's return value through the debug-exit port.
 * The others wait for the bootstrap CPU and then run ap_main(apic_id).
 */
#define STACK_SIZE 16384
#define MAX_CPUS 8
	.text
	.code64
	.globl common_start
common_start:
	movl $0xfee00020, %ebx
	movl (%rbx), %eax
	shrl $24, %eax
	movl %eax, %edi
	cmpl $MAX_CPUS, %eax
	jae too_many
	incl %eax
	imull $STACK_SIZE, %eax
	leaq stacks(%rip), %rsp
	addq %rax, %rsp
	testl %edi, %edi
	jnz ap_wait
	/* bootstrap CPU: clear .bss (8 bytes at a time: rep stos is slow when emulated) */
	leaq __bss_start(%rip), %rax
	leaq __bss_end(%rip), %rcx
1:	cmpq %rcx, %rax
	jae 2f
	movq $0, (%rax)
	addq $8, %rax
	jmp 1b
2:	pushq %rdi
	call runtime_init
	popq %rdi
	movl $1, bsp_ready(%rip)
	call main
	movl %eax, %edi
	call exit
ap_wait:
	pause
	cmpl $0, bsp_ready(%rip)
	je ap_wait
	pushq %rdi
	popq %rdi
	call ap_main
halt:
	cli
	hlt
	jmp halt
too_many:
	cli
	hlt
	jmp too_many

	.data
	.globl bsp_ready
	.balign 4
bsp_ready:
	.long 0

	.section .stacks, "aw", @nobits
	.balign 4096
stacks:
	.skip STACK_SIZE * (MAX_CPUS + 1)
