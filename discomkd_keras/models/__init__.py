"""The model classes: DisCoM-KD (`discomkd.py`), its baselines (`unimodal.py`,
`single_encoder.py`, `teacher.py`, `students.py`), the per-branch base they share
(`branch_classifiers.py`), one modality's branch and its deployable classifier
(`modality_branch.py`, `modality_classifier.py`), DisCoM-KD's shared heads
(`heads.py`), the encoders, the layers (`gradient_reversal.py`, `feature_split.py`)
and the loss terms (`losses.py`, `distillation_losses.py`).

These modules lived directly in `discomkd_keras/` until 0.1; `discomkd_keras._moved`
keeps the old import paths working (notebooks, and `.keras` files that name them).
"""
