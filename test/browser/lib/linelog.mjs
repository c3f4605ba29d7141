// LineLog keeps what a child process writes as whole lines, the newest `limit` of them.

/**
 * LineLog is a bounded log of lines. Marks count every line ever pushed, so a mark taken
 * before old lines were dropped still finds the lines after it (a debug-level server writes
 * tens of thousands of lines in a scenario). follow() reassembles lines split across chunks
 * (and multi-byte characters: the streams are decoded as UTF-8), so a check for a whole log
 * message never misses one that straddled two reads.
 */
export class LineLog {
  constructor(limit = 20000) {
    this.limit = limit;
    this.lines = [];
    this.dropped = 0;
  }

  push(line) {
    this.lines.push(line);
    const over = this.lines.length - this.limit;
    if (over > 0) {
      this.lines.splice(0, over);
      this.dropped += over;
    }
  }

  /** follow records every line of a readable stream; onLine, if given, sees each one. */
  follow(stream, onLine = undefined) {
    let partial = '';
    const take = (line) => {
      if (!line) return;
      this.push(line);
      onLine?.(line);
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop();
      for (const line of parts) take(line);
    });
    stream.on('end', () => {
      take(partial);
      partial = '';
    });
  }

  /** mark returns a position for since(): every line pushed from now on is after it. */
  mark() {
    return this.dropped + this.lines.length;
  }

  /** since returns the lines pushed after mark that are still kept. */
  since(mark) {
    return this.lines.slice(Math.max(0, mark - this.dropped));
  }

  /** tail returns the newest n lines. */
  tail(n) {
    return this.lines.slice(-n);
  }
}
