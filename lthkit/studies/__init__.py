"""The committed studies: the paper's protocol, instability analysis and ticket anatomy.
"""
