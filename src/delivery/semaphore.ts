/** A counting semaphore with a FIFO wait queue (O(1) acquire and release, even with 100k waiters). */
export class Semaphore {
  private active = 0;
  private waiters: (() => void)[] = [];
  private head = 0;

  constructor(private readonly limit: number) {}

  get inUse(): number {
    return this.active;
  }
  get waiting(): number {
    return this.waiters.length - this.head;
  }

  acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head] = noop; // drop the reference
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      next(); // the slot passes straight to the next waiter
    } else {
      this.active--;
    }
  }
}

const noop = (): void => {};
