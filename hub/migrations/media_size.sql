-- A picture's size, so pages give <img> its width and height and the text does not jump as it loads.
        alter table media add column width integer;
        alter table media add column height integer;
