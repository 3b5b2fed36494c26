// Microphone -> 50 ms chunks of 24 kHz mono PCM16 (linear resampling from the context's rate).
class Mic extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 24000;
    this.t = 0;
    this.last = 0;
    this.out = new Int16Array(1200);
    this.n = 0;
  }
  process([input]) {
    const x = input[0];
    if (!x) return true;
    for (; Math.floor(this.t) + 1 < x.length; this.t += this.step) {
      const i = Math.floor(this.t);
      const a = i < 0 ? this.last : x[i];
      const v = a + (x[i + 1] - a) * (this.t - i);
      this.out[this.n++] = Math.max(-1, Math.min(1, v)) * 32767;
      if (this.n === this.out.length) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(1200);
        this.n = 0;
      }
    }
    this.t -= x.length;
    this.last = x[x.length - 1];
    return true;
  }
}
registerProcessor("mic", Mic);
