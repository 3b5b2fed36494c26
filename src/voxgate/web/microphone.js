// Microphone capture: getUserMedia (echo cancellation on) -> low-pass -> AudioWorklet -> PCM16 chunks.

export const CAPTURE_RATE = 24000;
export const CHUNK_MS = 50;

export class MicrophoneError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = "MicrophoneError";
    this.cause = cause;
  }
}

/** Open the microphone on `context`; `onChunk(arrayBuffer, rms)` gets 50 ms of 24 kHz PCM16 each time. */
export async function openMicrophone(context, onChunk) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new MicrophoneError(
      "This browser cannot capture audio here. Open the page over https or on localhost in a current browser.",
    );
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        echoCancellation: true,
        noiseSuppression: false,
        autoGainControl: false,
        channelCount: 1,
      },
    });
  } catch (error) {
    throw new MicrophoneError(describeMediaError(error), error);
  }
  try {
    await context.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
    const source = context.createMediaStreamSource(stream);
    // Two cascaded biquads at 0.45 × 24 kHz: a steep enough low-pass for the worklet's decimation.
    const filters = [0, 1].map(() => new BiquadFilterNode(context, {
      type: "lowpass",
      frequency: Math.min(CAPTURE_RATE * 0.45, context.sampleRate * 0.45),
      Q: Math.SQRT1_2,
    }));
    const worklet = new AudioWorkletNode(context, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCountMode: "explicit",
      channelCount: 1,
      processorOptions: { targetRate: CAPTURE_RATE, chunkMs: CHUNK_MS },
    });
    worklet.port.onmessage = (event) => onChunk(event.data.pcm, event.data.rms);
    source.connect(filters[0]).connect(filters[1]).connect(worklet);
    return {
      stream,
      close() {
        worklet.port.postMessage("stop");
        worklet.port.onmessage = null;
        source.disconnect();
        filters.forEach((filter) => filter.disconnect());
        stream.getTracks().forEach((track) => track.stop());
      },
    };
  } catch (error) {
    stream.getTracks().forEach((track) => track.stop());
    throw new MicrophoneError(`The audio pipeline could not start: ${error.message || error}`, error);
  }
}

function describeMediaError(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and press Talk again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and press Talk again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone is busy or unavailable (another app may be using it). Free it and press Talk again.";
    default:
      return `The microphone could not be opened (${error?.message || error}). Press Talk to try again.`;
  }
}
