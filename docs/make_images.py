"""Draw, as PNG files, the surprisal view and one hidden unit over a record.

Run by ``make screenshots`` (whose browser test takes the screenshots of
the widgets themselves). The pictures are made by the same library functions the
notebooks call, from the pretrained model and the first record of the
embedded corpus, so they show what notebook 06 shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import charrnn
from charrnn.viz.neurons import hidden_states, save_activation_png, text_features, top_units
from charrnn.viz.surprisal import char_surprisal, save_surprisal_png


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model, vocab = charrnn.load_pretrained()
    text = charrnn.load_texts()[0]

    bits = char_surprisal(model, vocab, text)
    save_surprisal_png(out_dir / "surprisal.png", text, bits,
                       title=f"Surprisal of the pretrained LSTM, {bits.mean():.2f} bits per character on average")

    states = hidden_states(model, vocab, text)
    best = top_units(states, text_features(text), k=1)
    math_unit = next(m for m in best if m.feature == "math")
    save_activation_png(out_dir / "neuron-math.png", text, states[:, math_unit.unit], unit=math_unit.unit,
                        title=f"Unit {math_unit.unit} of the top LSTM layer: correlation "
                              f"{math_unit.correlation:+.2f} with 'inside $...$' (chance {math_unit.chance:.2f})")
    for m in best:
        print(f"{m.feature:<14} unit {m.unit:>3}  r = {m.correlation:+.2f}  (chance {m.chance:.2f})")
    print(f"wrote {out_dir / 'surprisal.png'} and {out_dir / 'neuron-math.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "images")
