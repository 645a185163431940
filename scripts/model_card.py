"""Generate MODEL_CARD.md (and its figures) from the shipped ONNX files and the training records.

    python scripts/model_card.py --data ../shared/fer2013

Every accuracy here is measured now, by onnxruntime on the shipped file, fed PrivateTest/PublicTest
pixels exactly as the contract says. Training facts (hardware, wall time, seeds, per-member scores)
come from results/gpu-h100-2026-11-25* (written by scripts/explore/gpu_session.sh), results/cpu-2core-* and
results/ensemble-*.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ferkit.data import load_split
from ferkit.data.audit import leaked_mask
from ferkit.emotions import EMOTIONS
from ferkit.metrics import classification_report, expected_calibration_error
from ferkit.models.tta import TTA_VIEW_COUNT
from ferkit.outputs import atomic_write_text, check_script_outputs
from ferkit.plots import plot_confusion
from ferkit.weights import list_shipped

sys.path.insert(0, str(Path(__file__).resolve().parent))
from card_ferplus import crowd_measures, ferplus_section, headline_cells  # noqa: E402
from card_records import GPU_DIRS, REPO, RESULTS, _kd_recipe, _run_record, fmt_pct, gpu_runs, onnx_stats, run_onnx  # noqa: E402
from card_speed import small_nets_section, speed_section  # noqa: E402

GPU = GPU_DIRS[0]
CPU_RUN = RESULTS / "cpu-2core-2026-11-25-e40"  # one member trained end to end on this machine's 2 cores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "fer2013"))
    ap.add_argument("--out", default=str(REPO / "MODEL_CARD.md"))
    ap.add_argument("--cache", help="folder to keep each shipped file's outputs in (keyed by its SHA-1)")
    ap.add_argument("--votes", help="FER+ votes (ferplus_votes.csv or fer2013new.csv; default: found beside --data)")
    a = ap.parse_args()
    check_script_outputs(ap, {"--out": a.out}, {a.data: "--data"})  # ferkit.outputs' rules
    t_start = time.time()
    fig_dir = REPO / "docs" / "model_card"
    fig_dir.mkdir(parents=True, exist_ok=True)
    train = load_split(a.data, "train", progress=False)
    pub = load_split(a.data, "public", progress=False)
    pri = load_split(a.data, "private", progress=False)
    from ferkit.data.audit import audit

    aud = audit({"train": train, "public": pub, "private": pri})
    n_blank = sum(v["blank"] for v in aud["splits"].values())
    clean = ~leaked_mask(pri, train)
    clean_pub = ~leaked_mask(pub, train)
    shipped = list_shipped()
    from ferkit.data.ferplus import find_votes

    votes_path = find_votes(a.data, a.votes)
    measured = {}
    cache_hits = 0
    for name, path in shipped.items():
        st = onnx_stats(path)
        cache = Path(a.cache) / f"{name}-{hashlib.sha1(path.read_bytes()).hexdigest()[:16]}.npz" if a.cache else None
        if cache is not None and cache.exists():  # outputs of this very file, from an earlier run
            cache_hits += 1
            c = np.load(cache)
            p_pri, p_pub, dt = c["p_pri"], c["p_pub"], float(c["dt"])
            raw_pri, raw_pub = (c["raw_pri"], c["raw_pub"]) if "raw_pri" in c else (None, None)
        else:
            p_pri, raw_pri, dt = run_onnx(path, pri.images)
            p_pub, raw_pub, _ = run_onnx(path, pub.images)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                extra = {"raw_pri": raw_pri, "raw_pub": raw_pub} if raw_pri is not None else {}
                np.savez(cache, p_pri=p_pri, p_pub=p_pub, dt=dt, **extra)
        rep = classification_report(pri.labels, p_pri.argmax(1), p_pri)
        measured[name] = {
            "stats": st, "report": rep, "seconds_private": dt,
            "private": rep["accuracy"],
            "public": float((p_pub.argmax(1) == pub.labels).mean()),
            "private_clean": float((p_pri.argmax(1) == pri.labels)[clean].mean()),
            "public_clean": float((p_pub.argmax(1) == pub.labels)[clean_pub].mean()),
            "ece_private": expected_calibration_error(p_pri, pri.labels),
            "ece_private_t1": expected_calibration_error(raw_pri, pri.labels) if raw_pri is not None else None,
            "ece_public": expected_calibration_error(p_pub, pub.labels),
            "ece_public_t1": expected_calibration_error(raw_pub, pub.labels) if raw_pub is not None else None,
            "ferplus": crowd_measures(p_pri, p_pub, pri, pub, votes_path) if votes_path else None,
        }
        plot_confusion(rep["confusion_matrix"], fig_dir / f"confusion-{name}.png",
                       title=f"{path.name} on PrivateTest")
    runs = gpu_runs()
    ens = json.loads((RESULTS / "ensemble-selection.json").read_text()) if (
        RESULTS / "ensemble-selection.json").exists() else None
    tts = json.loads((RESULTS / "tta-search.json").read_text()) if (RESULTS / "tta-search.json").exists() else None
    atomic_write_text(RESULTS / "model-card-measurements.json", json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk != "report"} | {"report": v["report"]}
         for k, v in measured.items()}, indent=1, default=str))
    from model_headline import write_headline  # headline numbers shipped for `ferkit serve` (GET /v1/model)

    write_headline(json.loads((RESULTS / "model-card-measurements.json").read_text()))

    legacy = "fer2013" if "fer2013" in measured else "default"  # the ensemble trained on FER2013's labels
    d = measured[legacy]
    meta = d["stats"]["meta"]
    fm = [r for n, r in runs.items() if r["model"] == "fernet_m" and r["kind"] == "plain"]
    single = np.array([r["private-none"] for r in fm])
    single_flip = np.array([r["private-flip"] for r in fm])
    single_shift = np.array([r["private-shift"] for r in fm])
    kd = [r for r in runs.values() if r["kind"].startswith("KD") and r["model"] == "fernet_m"]
    cpu = _run_record(CPU_RUN) if (CPU_RUN / "metrics.csv").exists() else None
    seed = runs.get("seed", {})
    L = []
    L.append("# Model card — ferkit shipped models\n")
    L.append(f"Generated by `python scripts/model_card.py --data ../shared/fer2013` on {time.strftime('%Y-%m-%d')} "
             f"({platform.processor() or platform.machine()}, onnxruntime {ort.__version__}); every accuracy "
             "below was measured by that run with onnxruntime on the shipped file, fed raw pixels as the "
             f"contract says. The script took {time.time() - t_start:.0f} s"
             + (" (the ONNX outputs came from its `--cache` of the same files)" if cache_hits else "")
             + ". onnxruntime speed on PrivateTest (2 threads, batch 256, this machine): "
             + ", ".join(f"`{n}` {len(pri) / m['seconds_private']:.0f} faces/s" for n, m in measured.items())
             + ".\n")
    L.append("## Contract\n")
    L.append(f"`{meta.get('ferkit_contract', '')}`. Found by `ferkit.weights.default_model_path()` "
             "(`default`) and `ferkit.weights.model_path('fast')`. The ONNX metadata holds the labels, the "
             "members, the TTA mode and the temperature.\n")
    L.append("## Headline (FER2013 official protocol: train on Training, select on PublicTest, report PrivateTest)\n")
    L.append("| model | labels learned | file | arithmetic | PrivateTest | PublicTest | PrivateTest without "
             "train-leaked images | macro-F1 (Private) | FER+ PrivateTest (majority, 7 classes) | params "
             "| MACs / face | size |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, m in measured.items():
        st = m["stats"]
        members = json.loads(st["meta"].get("members", "[]"))
        arith = st["meta"].get("arithmetic", "float32").split(" (")[0]
        L.append(f"| `{name}`: {len(members)} x {members[0] if members else '?'}, TTA {st['meta'].get('tta')} "
                 f"| {st['meta'].get('trained_labels', 'fer2013')} | {shipped[name].name} | {arith} "
                 f"| **{fmt_pct(m['private'])}** | {fmt_pct(m['public'])} "
                 f"| {fmt_pct(m['private_clean'])} (n={int(clean.sum())}) | {m['report']['macro_f1']:.4f} "
                 f"| {headline_cells(m)} | {st['params'] / 1e6:.2f} M | {st['macs'] / 1e9:.2f} G "
                 f"| {st['size_mb']:.1f} MB |")
    L.append("")
    L.append(f"PrivateTest has {len(pri)} images, {int((~clean).sum())} of which have an exact pixel copy in "
             f"Training (PublicTest: {int((~clean_pub).sum())}); found by content hash "
             "(`ferkit data audit`, `ferkit.data.audit.leaked_mask`).\n")
    L.append("Reference points (published, GPU, ~300 epochs): mini-Xception (the `fer` package) 66%, VGGNet "
             "73.28% (Khaireddin & Chen 2021), ResNet18 with tricks 73.70%, Residual Masking Network 74.14%; "
             "ensembles: Pramerdorfer & Kampel 75.2%, RMN + 6 CNNs 76.82%.\n")
    L += ferplus_section(measured, RESULTS)
    if legacy != "default":
        L.append(f"The sections below describe the ensemble trained on FER2013's labels, shipped as `{legacy}`: how "
                 "its networks were trained and its views, members and int8 settings chosen. `default` and `fast` "
                 "are networks of v1's files fine-tuned on plausible labels (above): `default` two of "
                 f"`{legacy}`'s three networks with 2 views (flip) and a neutral prior, `fast` v1's one network "
                 "with a neutral prior; both int8 as before.\n")
    L.append("## Single models and seed variance\n")
    L.append(f"`fernet_m` (VGG-BN 48-96-192-384, 2.64 M params, `configs/default.yaml`), {len(fm)} seeds, each "
             f"selected on PublicTest. PrivateTest, mean ± sd over seeds (min–max):\n")
    L.append("| test-time views | PrivateTest |")
    L.append("|---|---|")
    view_rows = [("none (1 view)", single), ("flip (2 views)", single_flip), ("shift (10 views)", single_shift)]
    fm_names = [n for n, r in runs.items() if r in fm]
    if tts and all(n in tts["sets"]["scale-rot"]["single"] for n in fm_names):
        view_rows.append(("scale-rot (10 views; bf16, `results/tta-search.json`)",
                     np.array([tts["sets"]["scale-rot"]["single"][n][1] for n in fm_names])))
    for label, arr in view_rows:
        L.append(f"| {label} | **{fmt_pct(arr.mean())} ± {100 * arr.std(ddof=1):.2f}** "
                 f"({fmt_pct(arr.min())}–{fmt_pct(arr.max())}) |")
    L.append("")
    L.append("Seeds at or above the 72% single-model bar: "
             + ", ".join(f"{int((arr >= 0.72).sum())} of {len(arr)} with {label.split(' (')[0]}"
                         for label, arr in view_rows)
             + ". The published single-network "
             "anchors use test-time views as well: Khaireddin & Chen's code (github.com/usef-kh/fer, "
             "`data/fer2013.py`) averages ten 40-px crops (TenCrop) of every test face (and selects on "
             "PrivateTest, reporting PublicTest), so the comparable figure for one of our networks is the one "
             "with views.\n")
    if kd:
        kd_none = np.array([r["private-none"] for r in kd])
        L.append(f"Distilled `fernet_m` students ({len(kd)} runs, teacher = averaged probabilities of 8 trained "
                 f"members or of 4 out-of-fold models, `scripts/soft_labels.py`): PrivateTest without views "
                 f"{fmt_pct(kd_none.mean())} ± {100 * kd_none.std(ddof=1):.2f} — no gain over plain training "
                 "on this data (table below).\n")
    L.append("All runs, each selected on PublicTest (time = the run's own wall time while sharing the GPU):\n")
    L.append("| run | model | variant | seed | epochs | GPU train time | best PublicTest | PrivateTest "
             "| Private (flip) | Private (shift) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for n, r in runs.items():
        ep = f"{r['epochs']}" + (f" of {r['planned']} (stopped at the call's deadline)" if r["epochs"] < r["planned"]
                                 else "")
        L.append(f"| {n} | {r['model']} | {r['kind']} | {r['seed']} | {ep} | {r['train_seconds'] / 60:.1f} min "
                 f"| {fmt_pct(r['best_public'])} | {fmt_pct(r['private-none'])} | {fmt_pct(r['private-flip'])} "
                 f"| {fmt_pct(r['private-shift']) if 'private-shift' in r else 'n/a'} |")
    L.append("")
    L.append("Runs were trained side by side (2–8 at once) on one NVIDIA H100 lent for the session, "
             "with `scripts/explore/gpu_session.sh` (bf16 autocast, channels-last). Per-run logs, "
             "`metrics.csv`, configs, "
             "curves and evaluation reports are in " + ", ".join(f"`{g.relative_to(REPO)}/`" for g in GPU_DIRS)
             + ". Runs stopped at a deadline did not finish their cosine schedule and score lower; the 8-at-once "
             "call was slower per run than planned.\n")
    if tts:
        n_ship = len(json.loads(meta.get("members", "[]")))
        L.append("## Choosing the test-time views and the members\n")
        L.append(f"`scripts/tta_bank.py` stores every candidate's logits under {len(tts['views'])} views "
                 "(affine warps of the raw pixels: mirror, 2-px shifts, zoom 0.85–1.15, rotation ±5/±10°); "
                 "`scripts/tta_search.py` then chooses on PublicTest only (bf16 inference there; the headline "
                 f"measures the shipped fp32 graph). Candidates: {', '.join(tts['members'])}. "
                 "View sets, with the candidates' single-network accuracy (mean over candidates) and the "
                 "average of all candidates:\n")
        L.append("| view set (`--tta`) | views | single PublicTest | single PrivateTest (mean ± sd) "
                 "| all candidates PublicTest | all candidates PrivateTest |")
        L.append("|---|---|---|---|---|---|")
        for k, st in tts["sets"].items():
            sp = np.array(list(st["single"].values()))
            mode = f"`{k}`" if k in TTA_VIEW_COUNT else f"{k} (not a mode)"
            L.append(f"| {mode} | {len(st['views'])} | {fmt_pct(sp[:, 0].mean())} | {fmt_pct(sp[:, 1].mean())} "
                     f"± {100 * sp[:, 1].std(ddof=1):.2f} | {fmt_pct(st['all_members'][0])} "
                     f"| {fmt_pct(st['all_members'][1])} |")
        ch = tts["choice"]
        L.append("")
        L.append(f"The rule: among the `--tta` modes, the one with the best mean single-network PublicTest accuracy "
                 f"(an average over {len(tts['members'])} networks, steadier than any one ensemble's score) — "
                 f"`{ch['tta']}` — then greedy forward selection of members on PublicTest accuracy (ties: NLL), "
                 "cut at the first step with the path's best PublicTest score. PrivateTest is shown for "
                 "information only:\n")
        L.append("| step | members | PublicTest | PublicTest NLL | PrivateTest |")
        L.append("|---|---|---|---|---|")
        for i, st in enumerate(tts["sets"][ch["tta"]]["greedy"], 1):
            mark = " (chosen)" if st["members"] == ch["members"] else ""
            L.append(f"| {i}{mark} | {' + '.join(st['members'])} | {fmt_pct(st['public'])} "
                     f"| {st['public_nll']:.4f} | {fmt_pct(st['private'])} |")
        L.append("")
        if n_ship != len(ch["members"]):
            L.append(f"This choice shipped in float32 arithmetic until int8 made cheaper points competitive: the "
                     f"shipped `default` now has {n_ship} members and `{meta.get('tta')}` views, chosen from the "
                     "cost/accuracy table below.\n")
    if ens:
        L.append(f"An earlier selection with flip views only, over {len(ens['members'])} candidates "
                 "(`scripts/ensemble.py`, `results/ensemble-selection.log`), peaked at "
                 f"{fmt_pct(max(st['public'] for st in ens['path']))} on PublicTest.\n")
    L += speed_section(measured, RESULTS / "quant-pareto.json", RESULTS / "quant-speed.json")
    L += small_nets_section(RESULTS, measured)
    L.append(f"## Per-class results of `{legacy}` on PrivateTest\n")
    L.append("| class | precision | recall | F1 | support |")
    L.append("|---|---|---|---|---|")
    for e, r in d["report"]["per_class"].items():
        L.append(f"| {e} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    L.append("")
    L.append(f"![confusion matrix](docs/model_card/confusion-{legacy}.png)\n")
    cm = np.array(d["report"]["confusion_matrix"])
    off = cm - np.diag(np.diag(cm))
    worst = np.dstack(np.unravel_index(np.argsort(-off.ravel())[:3], off.shape))[0]
    L.append("Most frequent confusions (true → predicted): " + "; ".join(
        f"{EMOTIONS[i]} → {EMOTIONS[j]} ({off[i, j]})" for i, j in worst) + ".\n")
    L.append("## Calibration\n")
    L.append(f"Temperature T = {float(meta.get('temperature', 1)):.3f}, fitted on PublicTest (minimum NLL of the "
             "ensemble's averaged probabilities) and stored in the graph.\n")
    L.append("| model | ECE PrivateTest, T=1 | ECE PrivateTest, fitted T | ECE PublicTest, T=1 "
             "| ECE PublicTest, fitted T |")
    L.append("|---|---|---|---|---|")
    for name, m in measured.items():
        def f(x):
            return "n/a" if x is None else f"{x:.4f}"
        L.append(f"| {name} | {f(m['ece_private_t1'])} | {f(m['ece_private'])} | {f(m['ece_public_t1'])} "
                 f"| {f(m['ece_public'])} |")
    L.append("")
    L.append("## The original CNN (`seed`)\n")
    if seed:
        L.append(f"The original design (4 valid convs 128-256-512-512, dense 512-256, dropout 0.4/0.3, 4.23 M params) "
                 f"with its own recipe (Adam 1e-3, cross-entropy, batch 128, no augmentation, {seed['epochs']} "
                 f"epochs, `configs/seed.yaml`): PrivateTest **{fmt_pct(seed['private-none'])}** at the epoch "
                 f"best on PublicTest ({fmt_pct(seed['best_public'])}), {fmt_pct(seed['last'])} after the last "
                 "epoch. The original write-up's 75.6% was measured on its own test folder, not this protocol. "
                 f"Trained on the H100 in {seed['train_seconds'] / 60:.1f} min.\n")
        L.append(f"![seed learning curve]({(GPU / 'seed' / 'curves.png').relative_to(REPO)})\n")
    L.append("## Training recipe\n")
    chosen = [c.split("/")[0] for c in json.loads(meta.get("checkpoints", "[]"))]
    storage = meta.get("weights_storage", "float32").split()[0]
    L.append("`configs/default.yaml`: SGD-Nesterov (momentum 0.9, lr 0.05, weight decay 5e-4 on weights), "
             "cosine schedule with 2 warm-up epochs, batch 128, label smoothing 0.1, EMA of weights (0.999), "
             "augmentation on batched tensors (flip, rotation ±15°, scale 0.85–1.15, shift ±10%, "
             "brightness/contrast ±30%, random erasing p=0.5), selection on PublicTest each epoch. One command "
             "runs every step below from scratch and resumes after an interruption: "
             "`bash scripts/reproduce_default.sh ../shared/fer2013 repro`. To reproduce one member: "
             "`ferkit train --config configs/default.yaml "
             "--data ../shared/fer2013 --seed N --epochs E "
             "--name fmN` (E and N per the table above; `scripts/explore/gpu_session.sh` ran them), then "
             "`python scripts/tta_bank.py --data ../shared/fer2013 --out bank/ runs/*/best.pt`, "
             "`python scripts/tta_search.py --bank bank/ --json results/tta-search.json` and "
             f"`ferkit export {' '.join(f'runs/{m}/best.pt' for m in chosen)} --out ferkit-{legacy}.onnx "
             f"--tta {meta.get('tta')} --temperature auto --calib-data ../shared/fer2013 "
             f"--parity-data ../shared/fer2013 "
             + ("--quantize int8 --quant-data ../shared/fer2013"
                + (" --float-first-conv`" if meta.get("float_nodes") else "`")
                if meta.get("arithmetic", "").startswith("int8")
                else f"--weights {storage}`")
             + ", then `python scripts/model_card.py`. "
             + _kd_recipe([m for m in chosen if m in runs and runs[m]["kind"].startswith("KD")], runs)
             + f"Weight storage: `default` {meta.get('weights_storage')}; `fast` "
             f"{measured['fast']['stats']['meta'].get('weights_storage') if 'fast' in measured else 'n/a'}.\n")
    per_epoch = RESULTS / "cpu-2core-2026-11-25" / "metrics.csv"
    if per_epoch.exists():
        rows = list(csv.DictReader(open(per_epoch)))
        ep_s = float(np.mean([float(r["train_seconds"]) + float(r["val_seconds"]) for r in rows]))
        ips = float(np.mean([float(r["train_images_per_s"]) for r in rows]))
        L.append(f"CPU, per epoch: measured on this machine's 2 cores (`ferkit train --config "
                 f"configs/default.yaml --data ../shared/fer2013 --seed 6 --epochs 90 --max-steps 448`, "
                 f"bf16 + channels-last, `results/cpu-2core-2026-11-25/`): {ips:.0f} training images/s, "
                 f"{ep_s:.0f} s per epoch including validation, so a 90-epoch member like the shipped ones takes "
                 f"{90 * ep_s / 3600:.1f} h on CPU and the {len(chosen)}-member ensemble "
                 f"{len(chosen) * 90 * ep_s / 3600:.1f} h.\n")
    if cpu is not None:
        L.append(f"CPU, end to end: one member trained on the 2 cores with the same recipe shortened to "
                 f"{cpu['planned']} epochs (`ferkit train --config configs/default.yaml --data ../shared/fer2013 "
                 f"--epochs {cpu['planned']} --seed {cpu['seed']}`, `{CPU_RUN.relative_to(REPO)}/`): "
                 f"**{cpu['wall_seconds'] / 60:.0f} min** of training and validation "
                 f"(median epoch {cpu['median_epoch']:.0f} s, "
                 f"i.e. {cpu['planned'] * cpu['median_epoch'] / 60:.0f} min on an otherwise idle machine; the "
                 f"slowest epoch, {cpu['max_epoch']:.0f} s, shared the cores with an ONNX export) "
                 f"({cpu['train_ips']:.0f} images/s), "
                 f"best PublicTest {fmt_pct(cpu['best_public'])}, PrivateTest **{fmt_pct(cpu['private-none'])}** "
                 f"without views and {fmt_pct(cpu['private-flip'])} with flip. A shorter schedule is the price "
                 "of the 90-minute budget; compare the GPU members' 60–110 epochs above.\n")
    L.append("## Known limitations\n")
    weakest = min(EMOTIONS, key=lambda e: d["report"]["per_class"][e]["recall"])
    L.append("- FER2013 is research data (ICML 2013 challenge); its licence does not clearly allow commercial "
             "use. The weights are trained on it; the images are not shipped.\n"
             "- Dataset bias: web images from Google searches, mostly frontal, young adults; skin tones, ages and "
             "head poses outside that range are less accurate. Labels are noisy (human accuracy ~65±5%); "
             f"the audit (`ferkit data audit`) finds {aud['label_conflicts']} groups of identical images with "
             f"conflicting labels and {n_blank} blank images across the three splits.\n"
             f"- `disgust` has {train.counts()['disgust']} training images "
             f"({100 * train.counts()['disgust'] / len(train):.1f}%); the weakest recall is "
             f"`{weakest}` ({d['report']['per_class'][weakest]['recall']:.3f}); see the confusions above.\n"
             "- Accuracy on 48x48 crops from FER2013 does not transfer one-to-one to crops from a face detector "
             "on real photos: crop margins and alignment matter (how ferkit frames crops: README, section "
             "Photos; end-to-end measurements on real photos: benchmarks/RESULTS.md).\n"
             "- The shipped members were trained on a lent GPU; on 2 CPU cores one shortened member was run end "
             "to end (above), the full-length recipe only per epoch.\n"
             f"- Against the targets we set ourselves (shipped ≥ 74%, aim 77%; single network ≥ 72%, aim 74.5%): "
             f"the shipped ensemble scores {fmt_pct(d['private'])} on PrivateTest"
             f"{' — short of the 77% aim' if d['private'] >= 0.74 else ' — under the 74% bar'}; one network "
             f"averages {fmt_pct(single.mean())} without test-time views, {fmt_pct(single_flip.mean())} with flip"
             + (f" and {fmt_pct(np.mean([v[1] for v in tts['sets'][tts['choice']['tta']]['single'].values()]))} "
                f"with `{tts['choice']['tta']}` views (bf16, {len(tts['members'])} networks)" if tts else "")
             + " — short of the 74.5% aim.\n")
    v2 = {n: measured[n]["ferplus"]["private"]["majority"]["accuracy"] for n in ("default", "fast")
          if legacy != "default" and (measured.get(n) or {}).get("ferplus")}
    if v2:
        sel = _last_default_pick(REPO / "results")
        L[-1] += ("- Against issue 22's targets (FER+ PrivateTest majority: `default` ≥ 82%, aim 88%; `fast` ≥ 79%): "
                  + "; ".join(f"`{n}` {fmt_pct(v)}{' — met' if v >= t else ' — short'}"
                              for (n, v), t in zip(v2.items(), (0.82, 0.79))) + ". The photo gate kept clear "
                  "expressions at a cost"
                  + (f": on webphotos-dev `default` names {fmt_pct(sel[1]['recall']['angry'])} of the angry faces "
                     f"angry where v1 named {fmt_pct(sel[0]['recall']['angry'])} and "
                     f"{fmt_pct(sel[1]['recall']['sad'])} of the sad ones sad (v1 {fmt_pct(sel[0]['recall']['sad'])};"
                     " the rule's floor is 5 points below v1); on the PublicTest faces where FER2013 and the crowd "
                     f"agree it names {fmt_pct(sel[1]['clear_recall']['fear'])} of the fearful ones fear (v1 "
                     f"{fmt_pct(sel[0]['clear_recall']['fear'])}, {sel[0]['clear_n']['fear']} faces, not gated) "
                     f"and {fmt_pct(sel[1]['clear_recall']['disgust'])} of the disgusted (v1 "
                     f"{fmt_pct(sel[0]['clear_recall']['disgust'])}, {sel[0]['clear_n']['disgust']} faces)"
                     if sel else "")
                  + f"; and it is right on FER2013's own labels less often "
                  f"({fmt_pct(measured['default']['private'])} vs `{legacy}` {fmt_pct(d['private'])}): where the "
                  "crowd and FER2013 disagree it follows the crowd.\n")
    atomic_write_text(a.out, "\n".join(L))
    print("\n".join(L[:20]))
    print(f"wrote {a.out} in {time.time() - t_start:.0f}s")


def _last_default_pick(results: Path) -> tuple[dict, dict] | None:
    """(v1 baseline row, picked row) of `default` in the latest selection run that measured clear-by-both recall."""
    rounds = sorted(results.glob("ferplus-selection-round*.json"),
                    key=lambda q: int(q.stem.removeprefix("ferplus-selection-round")))
    for path in reversed(rounds):
        rows = json.loads(path.read_text())["slots"].get("default", [])
        pick = [r for r in rows if r.get("shipped")]
        if pick and "clear_recall" in rows[0]:
            return rows[0], pick[0]
    return None


if __name__ == "__main__":
    main()
