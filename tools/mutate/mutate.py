r"""Mutation check: does the test suite catch plausible one-line bugs?

Each mutation below is a named, plausible one-line bug: an exact string in one source file and
its replacement. The script copies the repository to a scratch folder (the committed tree,
``git archive HEAD``, by default; ``--worktree`` copies tracked and untracked-but-not-ignored
files as they are on disk), checks that the unmutated copy passes every test file the mutations
name, then for each mutation applies the replacement, runs that mutation's test files with the
venv's python from inside the copy (``python -m pytest -x``; the copy's ``mege`` shadows the
editable install, which the script checks), records caught (a test failed) or survived (all
passed), and restores the file. ``../shared`` (the MNIST test split) is linked beside the copy so
tests that need it run. Results go to ``tools/mutate/report.md``.

    .venv/bin/python tools/mutate/mutate.py            # all mutations (make mutate)
    .venv/bin/python tools/mutate/mutate.py --only js_surrogate_sign,knn_weights_off
    .venv/bin/python tools/mutate/mutate.py --list
    .venv/bin/python tools/mutate/mutate.py --check    # seconds: does every mutation still apply?

``--check`` runs no tests: on the scratch copy it verifies that each mutation's string occurs
exactly ``count`` times in its file, that the replacement changes the file and leaves it valid
Python, and that each test file it names exists; one line per mutation, exit status 1 if any
fails. ``tests/test_mutate.py`` runs it (``--check --worktree``) so a refactor that moves a
mutated line or a test file fails ``make test``.

Each mutation names the test files that should catch it (not the whole suite), so a run takes
minutes rather than hours; a mutation caught by a test file it does not list would still count
as survived here. A survivor is explained in its ``note`` (and in the report).
Runs single-threaded (``OMP_NUM_THREADS=1``) like ``make test`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "tools" / "mutate" / "report.md"


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str  # what the bug would do
    note: str = ""  # why a survivor is acceptable (only used when it survives)
    count: int = 1  # how many occurrences of ``old`` the file must hold (all are replaced)
    issue12: bool = False  # one of the five bugs issue 12 found passing the whole suite


MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------------ the five of issue 12, then the objective
    Mutation("trainer_lambda_h_zero", "objective", "mege/training/trainer.py",
             'self.entropy, self.lambda_h(), fwd["generator"], z)',
             'self.entropy, 0.0, fwd["generator"], z)',
             ("tests/training/test_train_step.py",),
             "the trainer passes λ_H = 0 to the generator objective: the entropy term is silently off",
             issue12=True),
    Mutation("ema_metrics_from_raw_generator", "evaluation", "mege/training/trainer.py",
             'result["ema_metrics"] = self._metric(self.ema.module)',
             'result["ema_metrics"] = self._metric(self.generator)',
             ("tests/training/test_train_step.py",),
             "the EMA generator's metrics are computed on the raw generator",
             issue12=True),
    Mutation("noisy_sigma_detached", "generator", "mege/generators.py",
             "return mean + self.sigma * torch.randn_like(mean)",
             "return mean + self.sigma.detach() * torch.randn_like(mean)",
             ("tests/training/test_train_step.py",),
             "a learned σ of the noisy generator gets no gradient (it never learns)",
             issue12=True),
    Mutation("knn_weights_off", "estimator", "mege/entropy/knn.py",
             "bias_cancelling_weights(d, self.k, min(d // 4, self.max_orders))",
             "bias_cancelling_weights(d, self.k, 0)",
             ("tests/entropy/test_knn.py",),
             "the weighted kNN estimator's bias-cancelling weights are turned off (uniform 1/k)",
             issue12=True),
    Mutation("js_surrogate_sign", "estimator", "mege/entropy/mi.py",
             'EntropyResult(surrogate=-bce, aux_loss=bce, info={"mi_js": -bce})',
             'EntropyResult(surrogate=bce, aux_loss=bce, info={"mi_js": -bce})',
             ("tests/entropy/test_mi.py", "tests/entropy/test_contract.py"),
             "the JS MI bound's surrogate has the wrong sign: the default estimator pushes towards collapse",
             issue12=True),
    Mutation("generator_objective_sign", "objective", "mege/objectives.py",
             "return GeneratorStep(energy - lambda_h * entropy.surrogate, energy, entropy)",
             "return GeneratorStep(energy + lambda_h * entropy.surrogate, energy, entropy)",
             ("tests/test_objectives.py", "tests/training/test_train_step.py"),
             "the generator objective adds the entropy instead of subtracting it (minimises entropy)"),
    # ------------------------------------------------------------------ losses
    Mutation("nonsaturating_generator_sign", "loss", "mege/energy/losses.py",
             "return F.softplus(u_fake).mean()",
             "return F.softplus(-u_fake).mean()",
             ("tests/energy/test_losses.py",),
             "the non-saturating generator loss rewards high energy (pushes samples out of the pits)"),
    Mutation("energy_difference_critic_sign", "loss", "mege/energy/losses.py",
             "return u_real.mean() - u_fake.mean()",
             "return u_fake.mean() - u_real.mean()",
             ("tests/energy/test_losses.py",),
             "the energy-difference critic raises the energy of the data"),
    Mutation("hinge_margin_dropped", "loss", "mege/energy/losses.py",
             "return F.relu(1 + u_real).mean() + F.relu(1 - u_fake).mean()",
             "return F.relu(u_real).mean() + F.relu(-u_fake).mean()",
             ("tests/energy/test_losses.py",),
             "the hinge loss loses its margin of 1"),
    # ------------------------------------------------------------------ penalties
    Mutation("wgan_gp_zero_centred", "penalty", "mege/penalties.py",
             "return self.weight * (norm - 1).pow(2).mean()",
             "return self.weight * norm.pow(2).mean()",
             ("tests/test_penalties.py",),
             "WGAN-GP's one-centred penalty becomes zero-centred"),
    Mutation("wgan_div_power", "penalty", "mege/penalties.py",
             "norms_sq.pow(self.p / 2).mean()",
             "norms_sq.pow(self.p).mean()",
             ("tests/test_penalties.py",),
             "WGAN-div raises the squared norm to p instead of the norm"),
    Mutation("lazy_penalty_not_scaled", "penalty", "mege/objectives.py",
             "pen = pen if penalty_scale == 1 else pen * penalty_scale",
             "pen = pen",
             ("tests/test_penalties.py", "tests/test_objectives.py", "tests/training/test_train_step.py"),
             "lazy regularisation applies the penalty every k-th step without scaling it by k"),
    # ------------------------------------------------------------------ estimators
    Mutation("score_surrogate_sign", "estimator", "mege/entropy/base.py",
             "return -(score.detach() * flatten(x)).sum(dim=1).mean()",
             "return (score.detach() * flatten(x)).sum(dim=1).mean()",
             ("tests/entropy/test_contract.py",),
             "every score-based estimator (Stein, SSGE, KDE score, posterior) pushes towards collapse"),
    Mutation("infonce_log_n_dropped", "estimator", "mege/entropy/mi.py",
             "torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[0])",
             "torch.logsumexp(scores, dim=1)).mean()",
             ("tests/entropy/test_mi.py",),
             "InfoNCE reports the bound without its + log n"),
    Mutation("importance_ess_formula", "estimator", "mege/entropy/posterior.py",
             "ess = 1.0 / weights.pow(2).sum(dim=0)",
             "ess = weights.sum(dim=0)",
             ("tests/entropy/test_posterior.py",),
             "the importance sampler's effective sample size is reported as 1 (fraction 1/M)"),
    Mutation("flow_couplings_dropped", "estimator", "mege/entropy/flow.py",
             "transforms += [coupling, flip]",
             "transforms += [flip]",
             ("tests/entropy/test_flow.py",),
             "the flow's couplings are left out of its density: it stays the whitened Gaussian and never fits"),
    # ------------------------------------------------------------------ metrics
    Mutation("toy_hq_threshold_without_std", "metric", "mege/metrics/toy.py",
             "hq = nearest_distance <= hq_std * std",
             "hq = nearest_distance <= hq_std",
             ("tests/metrics/test_toy.py",),
             "the HQ threshold forgets the mixture's std (every sample within 3 units is HQ)"),
    Mutation("toy_kl_direction", "metric", "mege/metrics/toy.py",
             "kl = float(rel_entr(q, w).sum())",
             "kl = float(rel_entr(w, q).sum())",
             ("tests/metrics/test_toy.py",),
             "the toy reverse KL is computed as the forward KL"),
    Mutation("stacked_channel_order", "metric", "mege/metrics/stacked_mnist.py",
             "start = time.perf_counter()\n        labels, confidence = classify_stacks(classifier, x, self.batch_size, confidence=True)",
             "start = time.perf_counter()\n        labels, confidence = classify_stacks(classifier, x.flip(1), self.batch_size, confidence=True)",
             ("tests/metrics/test_stacked_mnist.py",),
             "Stacked MNIST reads the generated channels in reverse order"),
    # ------------------------------------------------------------------ MCMC
    Mutation("mala_proposal_ratio_inverted", "mcmc", "mege/mcmc/mala.py",
             "log_alpha = log_alpha + log_q_backward - log_q_forward",
             "log_alpha = log_alpha + log_q_forward - log_q_backward",
             ("tests/mcmc/test_samplers.py", "tests/test_sampling.py"),
             "MALA's Metropolis–Hastings ratio uses the proposal densities the wrong way round"),
    Mutation("mala_accept_rate_denominator", "mcmc", "mege/mcmc/mala.py",
             "accept_rate=accepted[False] / (steps - warmup) if steps > warmup else nan,",
             "accept_rate=accepted[False] / steps if steps > warmup else nan,",
             ("tests/mcmc/test_samplers.py", "tests/test_sampling.py"),
             "the post-warm-up acceptance rate is divided by all steps"),
    Mutation("latent_prior_weight", "mcmc", "mege/mcmc/ops.py",
             "e = e + 0.5 * z.flatten(1).pow(2).sum(dim=1)",
             "e = e + z.flatten(1).pow(2).sum(dim=1)",
             ("tests/mcmc/test_samplers.py", "tests/test_sampling.py"),
             "the latent target's Gaussian prior term loses its ½ (prior variance ½)"),
    # ------------------------------------------------------------------ training loop, resume
    Mutation("resume_without_rng", "resume", "mege/training/trainer.py",
             '            set_rng_state(state["rng"])\n',
             '            pass\n',
             ("tests/training/test_trainer.py",),
             "resume does not restore the RNG states: a resumed run differs from an uninterrupted one"),
    # the trainer's ``_ema_started`` flag became EMA.updates, restored from n_averaged on load: a count
    # of 0 makes the next update a copy of the raw weights
    Mutation("resume_restarts_ema", "resume", "mege/ema.py",
             "self.updates = int(self.n_averaged)",
             "self.updates = 0",
             ("tests/test_ema.py", "tests/training/test_trainer.py"),
             "after resume the EMA is overwritten by the raw weights at the first step"),
    Mutation("ema_lerp_weight", "training", "mege/ema.py",
             "torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], 1 - d)",
             "torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], d)",
             ("tests/test_ema.py", "tests/training/test_trainer.py", "tests/training/test_train_step.py"),
             "the EMA keeps weight 1 − decay on the old average instead of decay"),
    # ------------------------------------------------------------------ reports
    Mutation("report_se_ddof", "report", "mege/report/aggregate.py",
             "var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)",
             "var = math.fsum((v - mean) ** 2 for v in values) / n",
             ("tests/report/test_report.py",),
             "the report's ± across seeds uses the population variance (ddof 0): standard errors too small"),
    Mutation("report_floor_mark", "report", "mege/report/write.py",
             "and not math.isnan(value.mean) and value.mean <= 2 * floor.mean)",
             "and not math.isnan(value.mean) and value.mean <= floor.mean)",
             ("tests/report/test_report.py",),
             "the report marks a KL as 'at the floor' only below 1× the floor, not 2×"),
    # ------------------------------------------------------------------ training settings and the λ_H schedule
    Mutation("lambda_h_schedule_reversed", "settings", "mege/training/settings.py",
             "return self.lambda_h + (self.lambda_h_end - self.lambda_h) * min(1.0, step / self.steps)",
             "return self.lambda_h_end + (self.lambda_h - self.lambda_h_end) * min(1.0, step / self.steps)",
             ("tests/training/test_settings.py", "tests/training/test_trainer.py", "tests/training/test_train_step.py"),
             "the λ_H schedule runs backwards: it starts at lambda_h_end and ends at lambda_h"),
    Mutation("lambda_h_schedule_uncapped", "settings", "mege/training/settings.py",
             "* min(1.0, step / self.steps)",
             "* (step / self.steps)",
             ("tests/training/test_settings.py", "tests/training/test_trainer.py"),
             "λ_H keeps moving past train.steps (a resumed, lengthened run extrapolates, possibly below 0)"),
    Mutation("validate_zero_count_accepted", "settings", "mege/training/settings.py",
             'check(is_int(value) and value > 0, f"train.{key}',
             'check(is_int(value) and value >= 0, f"train.{key}',
             ("tests/training/test_settings.py", "tests/training/test_validation.py"),
             "train.steps=0 (or eval_every=0: a modulo by zero later) passes validation"),
    Mutation("validate_bool_is_an_int", "settings", "mege/training/settings.py",
             "return isinstance(value, numbers.Integral) and not isinstance(value, bool)",
             "return isinstance(value, numbers.Integral)",
             ("tests/training/test_settings.py",),
             "a YAML `true` passes as the count 1 (train.steps=true trains one step, seed=true is seed 1)"),
    Mutation("validate_lambda_h_end_zero_refused", "settings", "mege/training/settings.py",
             "check(end is None or float(end) >= 0",
             "check(end is None or float(end) > 0",
             ("tests/training/test_settings.py", "tests/training/test_trainer.py"),
             "an annealing schedule down to λ_H = 0 (lambda_h_end=0) is refused"),
    Mutation("joint_critic_forward_auto_off", "settings", "mege/training/settings.py",
             'joint_critic_forward=device.type == "cuda" if joint is None else bool(joint)',
             "joint_critic_forward=bool(joint)",
             ("tests/training/test_settings.py",),
             "train.joint_critic_forward=null (auto) never takes the joint critic forward, even on a GPU"),
    # ------------------------------------------------------------------ EMA warm-up
    Mutation("ema_warmup_min_to_max", "ema", "mege/ema.py",
             "return min(decay, (1 + updates) / (10 + updates)) if warmup else decay",
             "return max(decay, (1 + updates) / (10 + updates)) if warmup else decay",
             ("tests/test_ema.py",),
             "the warm-up never lowers the decay (and exceeds it late): warm-up has no effect on a short run"),
    Mutation("ema_or_none_drops_warmup", "ema", "mege/ema.py",
             "return EMA(model, decay, warmup) if decay else None",
             "return EMA(model, decay) if decay else None",
             ("tests/test_ema.py",),
             "ema_warmup=true in the config is silently ignored by the EMA factory"),
    Mutation("build_drops_ema_warmup", "ema", "mege/training/build.py",
             'ema_or_none(generator, cfg.get("ema_decay"), bool(cfg.get("ema_warmup", False)))',
             'ema_or_none(generator, cfg.get("ema_decay"))',
             ("tests/test_ema.py",),
             "the trainer builds its EMA without the config's ema_warmup"),
    # ------------------------------------------------------------------ EntropyTerm: fit and backward
    Mutation("term_fit_one_step_short", "entropy term", "mege/entropy/term.py",
             "for _ in range(self.fit_steps):",
             "for _ in range(self.fit_steps - 1):",
             ("tests/entropy/test_term.py",),
             "the estimator takes fit_steps − 1 fit steps per generator step (none at fit_steps=1)"),
    Mutation("term_fit_without_latents", "entropy term", "mege/entropy/term.py",
             "result = self.estimate(x, z, generator)",
             "result = self.estimate(x)",
             ("tests/entropy/test_term.py",),
             "fit steps of an estimator that needs the latents or the generator get neither"),
    Mutation("term_aux_not_stepped", "entropy term", "mege/entropy/term.py",
             "aux.backward(inputs=self.params)\n            self.optimizer.step()",
             "aux.backward(inputs=self.params)",
             ("tests/entropy/test_term.py",),
             "the joint step computes the estimator's aux-loss gradient but never steps its optimiser"),
    Mutation("term_aux_grad_not_cleared", "entropy term", "mege/entropy/term.py",
             "self.optimizer.zero_grad(set_to_none=True)\n            aux.backward(",
             "aux.backward(",
             ("tests/entropy/test_term.py",),
             "the joint aux step adds its gradient to the one the last fit step left behind"),
    Mutation("term_fits_without_optimizer", "entropy term", "mege/entropy/term.py",
             'self.fit_steps = int(getattr(estimator, "fit_steps", 0)) if self.optimizer is not None else 0',
             'self.fit_steps = int(getattr(estimator, "fit_steps", 0))',
             ("tests/entropy/test_term.py",),
             "an estimator with fit_steps but no optimiser (no trainable parameters) crashes in fit"),
    # ------------------------------------------------------------------ the run-folder check
    Mutation("resume_seed_may_change", "run folder", "mege/run_dir.py",
             '"device",\n              "optimized_metric")',
             '"device",\n              "optimized_metric", "seed")',
             ("tests/test_resume_check.py", "tests/test_run_dir.py"),
             "a checkpoint is continued under another seed (a run then mixes two seeds' streams)"),
    Mutation("resume_force_ignored", "run folder", "mege/run_dir.py",
             "if resume == FORCE or not self.checkpoint.is_file()",
             "if not self.checkpoint.is_file()",
             ("tests/test_resume_check.py", "tests/test_run_dir.py"),
             "train.resume=force no longer continues a run whose config changed"),
    Mutation("resume_steps_check_inverted", "run folder", "mege/run_dir.py",
             "isinstance(steps, int) and steps < step:",
             "isinstance(steps, int) and step < steps:",
             ("tests/test_resume_check.py", "tests/test_run_dir.py"),
             "more steps than the checkpoint's are refused and fewer are allowed"),
    Mutation("resume_shrinking_steps_exempt", "run folder", "mege/run_dir.py",
             "steps[1] >= steps[0]",
             "steps[1] != steps[0]",
             ("tests/test_resume_check.py", "tests/test_run_dir.py"),
             "a schedule length that follows train.steps is not reported as a change when steps shrink"),
    Mutation("resume_facts_not_exempt", "run folder", "mege/run_dir.py",
             "key in MAY_CHANGE or key.startswith(MAY_CHANGE_UNDER) or",
             "key in MAY_CHANGE or",
             ("tests/test_resume_check.py", "tests/test_run_dir.py"),
             "an edit of an estimator's facts (what studies know, not how it trains) refuses every resume"),
    Mutation("trim_drops_checkpoint_row", "run folder", "mege/run_dir.py",
             'row["step"] <= step]',
             'row["step"] < step]',
             ("tests/test_resume_check.py", "tests/training/test_trainer.py"),
             "resume drops the metrics row of the checkpoint's own step (an evaluation goes missing)"),
    # ------------------------------------------------------------------ leaderboard statistics
    Mutation("paired_t_one_sided", "leaderboard", "mege/leaderboard/points.py",
             "half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)",
             "half = t_quantile(level, n - 1) * sd / math.sqrt(n)",
             ("tests/leaderboard/test_leaderboard.py",),
             "the paired 95 % interval uses the one-sided quantile (a 90 % interval)"),
    Mutation("paired_t_df_n", "leaderboard", "mege/leaderboard/points.py",
             "half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)",
             "half = t_quantile(0.5 + level / 2, n) * sd / math.sqrt(n)",
             ("tests/leaderboard/test_leaderboard.py",),
             "the t quantile has n degrees of freedom instead of n − 1 (intervals too narrow at 3–5 seeds)"),
    Mutation("paired_sd_ddof", "leaderboard", "mege/leaderboard/points.py",
             "sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))",
             "sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / n)",
             ("tests/leaderboard/test_leaderboard.py",),
             "the paired differences' standard deviation uses ddof 0 (intervals too narrow)"),
    Mutation("paired_excludes_zero_one_sided", "leaderboard", "mege/leaderboard/points.py",
             "return self.n >= 2 and (self.low > 0 or self.high < 0)",
             "return self.n >= 2 and self.low > 0",
             ("tests/leaderboard/test_leaderboard.py",),
             "a difference whose interval lies below 0 (an improvement in KL) is not starred"),
    Mutation("rule_hq_threshold_strict", "leaderboard", "mege/leaderboard/points.py",
             "return not math.isnan(hq) and hq >= min_hq - TOL and",
             "return not math.isnan(hq) and hq > min_hq and",
             ("tests/leaderboard/test_leaderboard.py",),
             "the operating-point rule drops a value whose mean HQ is exactly 80 %"),
    Mutation("rule_tie_to_larger_value", "leaderboard", "mege/leaderboard/points.py",
             "key=lambda p: p.value)",
             "key=lambda p: -p.value)",
             ("tests/leaderboard/test_leaderboard.py",),
             "a tie in assigned KL goes to the larger λ_H instead of the smaller"),
    # ------------------------------------------------------------------ goodness of fit (G-test)
    Mutation("g_statistic_without_two", "goodness of fit", "mege/metrics/goodness_of_fit.py",
             "return 2.0 * n * kl",
             "return n * kl",
             ("tests/metrics/test_goodness_of_fit.py",),
             "G = n·KL instead of 2n·KL: every p-value far too large (bad fits called exact)"),
    Mutation("chi2_df_k", "goodness of fit", "mege/metrics/goodness_of_fit.py",
             "chi2.sf(g_statistic(kl, n), k - 1))",
             "chi2.sf(g_statistic(kl, n), k))",
             ("tests/metrics/test_goodness_of_fit.py",),
             "the G-test uses K degrees of freedom instead of K − 1"),
    Mutation("pooled_df_last_only", "goodness of fit", "mege/metrics/goodness_of_fit.py",
             "g, df = g + g_statistic(kl, n), df + (k - 1)",
             "g, df = g + g_statistic(kl, n), k - 1",
             ("tests/metrics/test_goodness_of_fit.py",),
             "pooling over seeds sums the G's but keeps one histogram's degrees of freedom (p far too small)"),
    # ------------------------------------------------------------------ reproducibility, committed results
    Mutation("promised_ignores_capability", "reproducibility", "mege/reproducibility.py",
             'r["torch"] == here["torch"] and r["cpu_capability"] == here["cpu_capability"]',
             'r["torch"] == here["torch"]',
             ("tests/test_reproducibility.py",),
             "bit-identity is promised across CPU kernel capabilities (AVX2 reference asserted on AVX-512)"),
    Mutation("promised_old_record_matches_nothing", "reproducibility", "mege/reproducibility.py",
             '(r.get("cpu_vendor") is None or r["cpu_vendor"] == here["cpu_vendor"])',
             'r.get("cpu_vendor") == here["cpu_vendor"]',
             ("tests/test_reproducibility.py",),
             "a reference recorded before vendors were recorded is promised nowhere (its bit-for-bit check always skips)"),
    Mutation("committed_any_path_in_a_checkout", "committed", "mege/committed.py",
             "return out.returncode == 0 and bool(out.stdout.strip())",
             "return out.returncode == 0",
             ("tests/test_committed.py",),
             "every path inside a git checkout counts as committed: rebuilds into a new folder are refused"),
    Mutation("setup_key_becomes_context", "leaderboard", "mege/leaderboard/points.py",
             "if len(values) > 1 and all(len(v) == 1 for v in values.values()):",
             "if False:",
             ("tests/leaderboard/test_leaderboard.py",),
             "the posterior scores' noisy generator is a context again: they are never compared with none"),
    Mutation("export_times_doubled", "study", "mege/study/export.py",
             "in rows and line not in have]",
             "in rows]",
             ("tests/study/test_study.py",),
             "exporting a study twice appends its timing lines twice (the committed times.tsv double-counts)"),
    Mutation("stacked_judged_while_none_runs", "leaderboard", "experiments/estimator_ablation/leaderboard.py",
             "ready = none is not None and len(none.runs) >= len(seeds)",
             "ready = none is not None",
             ("tests/leaderboard/test_ablation_ranking.py",),
             "a Stacked MNIST row is judged on the seeds `none` has so far, before the pre-registered 8"),
    Mutation("study_frontier_default_threshold", "study", "mege/study/run.py",
             'return None if threshold is None else [*args, "--min-hq", repr(threshold)]',
             "return list(args)",
             ("tests/study/test_select_relative.py",),
             "a study's frontier is drawn at the report's default 80 % HQ, not at its rule's threshold"),
    Mutation("completed_run_rewritten", "run folder", "mege/run_dir.py",
             'return summary if summary.get("step") == steps == self.checkpoint_step() else None',
             "return None",
             ("tests/test_run_dir.py",),
             "rerunning a completed run with its checkpoint rewrites its summary (another elapsed_s; 'running' meanwhile)"),
    Mutation("claim3_tie_to_larger_step", "claims", "experiments/claims/claim3_select.py",
             "key=lambda eta: (means[eta][0], means[eta][1], -eta))",
             "key=lambda eta: (means[eta][0], means[eta][1], eta))",
             ("tests/leaderboard/test_claim3_select.py",),
             "claim 3's stage-1 tie goes to the larger effective step, not the smaller one the protocol names"),
    Mutation("kept_run_record_rewritten", "study", "mege/study/launch.py",
             'keep_record = ["hydra.output_subdir=null"] if completed(job) else []', "keep_record = []",
             ("tests/study/test_end_to_end.py",),
             "a study rerun over a completed run lets hydra rewrite its .hydra record of how it was made"),
    Mutation("stacked_rescue_unmarked", "leaderboard", "experiments/estimator_ablation/leaderboard.py",
             'AMENDED = {(STACKED, "rescues"): "†"}', "AMENDED = {}",
             ("tests/leaderboard/test_ablation_ranking.py",),
             "a Stacked MNIST rescues is printed without amendment 1's mark (a coverage gain at unresolved quality)"),
]


# ---------------------------------------------------------------------- scratch copy
def copy_tree(dest: Path, worktree: bool) -> str:
    """Copy the repository (HEAD or the working tree, without .venv/.git) to ``dest``; returns a description."""
    dest.mkdir(parents=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    if worktree:
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src = REPO / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
        return f"working tree at commit {commit} (tracked and untracked-not-ignored files, as on disk)"
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return f"commit {commit} (git archive HEAD)"


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[int, float, str]:
    """(return code, seconds, output tail) of pytest on ``tests`` inside the copy."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(copy),
           "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf", *tests]
    start = time.perf_counter()
    try:
        # a run started in the background (nohup, &) inherits SIGINT ignored, and Python then keeps it
        # ignored, which the trainer's signal tests see: give pytest the default disposition back
        done = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:
        code, out = -1, f"timeout after {timeout:.0f}s\n{(err.stdout or b'')[-2000:]!r}"
    return code, time.perf_counter() - start, out


def first_failure(output: str) -> str:
    """The first ``FAILED test::name`` of pytest's short summary (or the last line)."""
    match = re.search(r"^FAILED (\S+)", output, flags=re.M)
    if match:
        return match.group(1)
    match = re.search(r"^ERROR (\S+)", output, flags=re.M)
    if match:
        return "error: " + match.group(1)
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def check_imports_the_copy(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    where = subprocess.run([sys.executable, "-c", "import mege; print(mege.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the scratch copy's tests would import mege from {where}, not from {copy}")


# ---------------------------------------------------------------------- --check
def check_mutation(copy: Path, m: Mutation) -> list[str]:
    """What keeps ``m`` from applying to the scratch copy (empty when it applies)."""
    problems = []
    target = copy / m.file
    if not target.is_file():
        problems.append(f"file {m.file} not found")
    else:
        original = target.read_text()
        hits = original.count(m.old)
        if hits != m.count:
            problems.append(f"string found {hits} time(s) in {m.file}, expected {m.count}")
        else:
            mutated = original.replace(m.old, m.new)
            if mutated == original:
                problems.append("the replacement leaves the file unchanged")
            elif m.file.endswith(".py"):
                try:
                    compile(mutated, m.file, "exec")
                except SyntaxError as err:
                    problems.append(f"the mutated file does not compile: {err.msg} (line {err.lineno})")
    if not m.tests:
        problems.append("no test files named")
    problems += [f"test file {t} not found" for t in m.tests if not (copy / t).is_file()]
    return problems


def check_all(copy: Path, mutations: list[Mutation]) -> int:
    """Print one line per mutation (``ok`` with file:line, or ``FAIL`` with why); the number that fail."""
    failed = 0
    for m in mutations:
        problems = check_mutation(copy, m)
        if problems:
            failed += 1
            print(f"FAIL {m.name:34s} {'; '.join(problems)}")
        else:
            line = (copy / m.file).read_text().split(m.old)[0].count("\n") + 1
            print(f"ok   {m.name:34s} {m.file}:{line}  tests: {', '.join(m.tests)}")
    print(f"{len(mutations) - failed} of {len(mutations)} mutations apply")
    names = [m.name for m in mutations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        failed += len(duplicates)
        print(f"FAIL duplicate mutation names: {', '.join(duplicates)}")
    return failed


# ---------------------------------------------------------------------- report
def md(text: str) -> str:
    """Inline code for a markdown table cell."""
    text = text.strip().replace("\n", "⏎").replace("|", "\\|")
    return f"`{text}`"


def write_report(path: Path, command: str, source: str, baseline: tuple[int, float, list[str]],
                 results: list[dict], total: float) -> None:
    caught = [r for r in results if r["status"] == "caught"]
    survived = [r for r in results if r["status"] == "survived"]
    other = [r for r in results if r["status"] not in ("caught", "survived")]
    lines = [
        "# Mutation check",
        "",
        f"Command: `{command}` (or `make mutate`), run {time.strftime('%Y-%m-%d %H:%M %Z')} on {source}, "
        f"{os.cpu_count()} CPU cores, `OMP_NUM_THREADS=1`, total {total / 60:.1f} min.",
        "",
        f"**{len(results)} mutations: {len(caught)} caught, {len(survived)} survived"
        + (f", {len(other)} not applied or timed out" if other else "") + ".**",
        "",
        "Each mutation is one plausible one-line bug (an exact string replaced in one file of a scratch copy); "
        "caught means a test in the listed files failed with it (`pytest -x`), survived means all passed. "
        f"Baseline (no mutation) over the union of the listed test files: "
        f"{'passed' if baseline[0] == 0 else 'FAILED (rc ' + str(baseline[0]) + ')'} in {baseline[1]:.0f} s "
        f"({len(baseline[2])} files).",
        "",
        "The five bugs of issue 12, which passed the whole suite before their tests were written: "
        + ", ".join(f"{r['mutation'].name} ({r['status']})" for r in results if r["mutation"].issue12) + ".",
        "",
        "| # | mutation | area | file | bug | replaced | by | tests run | result | first failing test | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        m: Mutation = r["mutation"]
        tests = ", ".join(Path(t).stem.removeprefix("test_") for t in m.tests)
        lines.append(f"| {i} | {m.name} | {m.area} | {m.file} | {m.why} | {md(m.old)} | {md(m.new)} | {tests} | "
                     f"**{r['status']}** | {md(r['detail']) if r['detail'] else ''} | {r['seconds']:.0f} s |")
    lines += ["", "## Survivors", ""]
    if survived:
        for r in survived:
            m = r["mutation"]
            lines.append(f"- **{m.name}**: {m.note or 'no note: a gap in the tests to close.'}")
    else:
        lines.append("None: every mutation made a listed test fail.")
    if other:
        lines += ["", "## Not applied / timed out", ""]
        lines += [f"- **{r['mutation'].name}**: {r['status']} ({r['detail']})" for r in other]
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutation names")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutation applies and its test files exist (runs no tests)")
    parser.add_argument("--worktree", action="store_true", help="copy the working tree instead of HEAD")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    parser.add_argument("--report", default=str(REPORT), help="markdown report path (default %(default)s)")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)

    chosen = MUTATIONS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutation(s) {sorted(unknown)}; see --list")
        chosen = [m for m in MUTATIONS if m.name in names]
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:34s} {m.area:10s} {m.file:32s} {m.why}")
        return 0
    if args.check:
        with tempfile.TemporaryDirectory(prefix="mege-mutate-check-") as tmp:
            copy = Path(tmp) / "repo"
            print(f"checking {len(chosen)} mutations on {copy_tree(copy, args.worktree)}")
            return 1 if check_all(copy, chosen) else 0

    command = "python tools/mutate/mutate.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mege-mutate-") as tmp:
        copy = Path(tmp) / "repo"
        source = copy_tree(copy, args.worktree)
        shared = REPO.parent / "shared"
        if shared.is_dir():
            (Path(tmp) / "shared").symlink_to(shared)
        check_imports_the_copy(copy)

        files = sorted({t for m in chosen for t in m.tests})
        if args.skip_baseline:
            baseline = (0, 0.0, files)
        else:
            print(f"baseline: {len(files)} test files ...", flush=True)
            code, seconds, out = run_tests(copy, files, args.timeout * 3)
            baseline = (code, seconds, files)
            print(f"baseline rc {code} in {seconds:.0f}s", flush=True)
            if code != 0:
                print(out[-4000:])
                print("the unmutated copy fails its tests; fix that first", file=sys.stderr)
                return 1

        results = []
        for m in chosen:
            target = copy / m.file
            original = target.read_text()
            hits = original.count(m.old)
            if hits != m.count:
                results.append({"mutation": m, "status": "not applied",
                                "detail": f"found {hits} occurrence(s) of the string, expected {m.count}", "seconds": 0.0})
                print(f"{m.name}: NOT APPLIED ({hits} occurrences)", flush=True)
                continue
            target.write_text(original.replace(m.old, m.new))
            try:
                code, seconds, out = run_tests(copy, list(m.tests), args.timeout)
            finally:
                target.write_text(original)
            if code == 0:
                status, detail = "survived", ""
            elif code == -1:
                status, detail = "timed out", first_failure(out)
            elif code == 5:
                status, detail = "no tests ran", first_failure(out)
            else:
                status, detail = "caught", first_failure(out)
            results.append({"mutation": m, "status": status, "detail": detail, "seconds": seconds})
            print(f"{m.name}: {status} in {seconds:.0f}s  {detail}", flush=True)

    total = time.perf_counter() - start
    write_report(Path(args.report), command, source, baseline, results, total)
    caught = sum(r["status"] == "caught" for r in results)
    print(f"{len(results)} mutations, {caught} caught; report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
