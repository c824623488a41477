from .fields import refuse_numbers_as_text

refuse_numbers_as_text()
