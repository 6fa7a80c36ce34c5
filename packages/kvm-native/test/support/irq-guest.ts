// A 64-bit guest with interrupt stubs for vectors 0x40-0x43: each stub reports its vector on port 0x11,
// sends the LAPIC EOI and returns with iretq. The guest masks the PIC, enables its LAPIC, routes IOAPIC
// pin 4 (edge) to 0x43 and pin 5 (level) to 0x42, reports "ready" on port 0x10, then waits in sti; hlt.
export const IRQ_GUEST = `
  mov $idt, %rdi
  mov $0x40, %ecx
  mov $stubs, %rsi
1:
  mov %rsi, %rax
  mov %rcx, %rbx
  shl $4, %rbx
  add %rdi, %rbx
  mov %ax, (%rbx)
  movw $8, 2(%rbx)
  movw $0x8e00, 4(%rbx)
  shr $16, %rax
  mov %ax, 6(%rbx)
  shr $16, %rax
  mov %eax, 8(%rbx)
  movl $0, 12(%rbx)
  add $16, %rsi
  inc %ecx
  cmp $0x44, %ecx
  jne 1b
  lidt idtr

  mov $0xff, %al
  out %al, $0x21
  out %al, $0xa1

  mov $0xfee000f0, %edx
  movl $0x1ff, (%rdx)

  mov $0xfec00000, %edx
  movl $0x1a, (%rdx)
  movl $0x8042, 0x10(%rdx)
  movl $0x1b, (%rdx)
  movl $0, 0x10(%rdx)
  movl $0x18, (%rdx)
  movl $0x43, 0x10(%rdx)
  movl $0x19, (%rdx)
  movl $0, 0x10(%rdx)

  out %al, $0x10
  sti
2:
  hlt
  jmp 2b

.align 16
stubs:
.irp v, 0x40, 0x41, 0x42, 0x43
.align 16
  push %rax
  mov $\\v, %al
  jmp common
.endr
common:
  out %al, $0x11
  mov $0xfee000b0, %eax
  movl $0, (%rax)
  pop %rax
  iretq

.align 16
idtr:
  .word 0x44 * 16 - 1
  .quad idt
.align 16
idt:
  .fill 0x44 * 16, 1, 0
`;
